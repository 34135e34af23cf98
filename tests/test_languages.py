"""The language list and detection."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lmdesk.core.text.languages import (
    AUTO,
    LANGUAGES,
    detect_language,
    find_language,
    get_language,
    is_rtl,
    language_name,
)

REQUIRED = ["zh-Hans", "zh-Hant", "ja", "ko", "ar", "he", "ru", "es", "fr", "de", "pt", "hi", "it", "nl",
            "pl", "tr", "uk", "vi", "id", "th", "fa", "sv", "el", "cs", "en"]


def test_at_least_twenty_languages_with_unique_codes_and_names():
    codes = [lang.code for lang in LANGUAGES]
    assert len(codes) >= 20 and len(set(codes)) == len(codes)
    assert set(REQUIRED) <= set(codes)
    assert all(lang.name and lang.native for lang in LANGUAGES)
    assert AUTO not in codes


def test_rtl_languages():
    for code in ("ar", "he", "fa"):
        assert is_rtl(code) and get_language(code).rtl
    assert not is_rtl("en") and not is_rtl("zh-Hans") and not is_rtl("nonsense")


def test_lookup_by_code_alias_and_name():
    assert get_language("ZH").code == "zh-Hans"
    assert find_language("zh_TW").code == "zh-Hant"
    assert find_language("German").code == "de"
    assert find_language("Deutsch").code == "de"
    assert find_language("klingon") is None
    assert language_name("ja") == "Japanese" and language_name("tlh") == "tlh"
    with pytest.raises(KeyError):
        get_language("klingon")
    assert get_language("fr").label == "French — Français"


@pytest.mark.parametrize(
    "text,code",
    [
        ("今天天气很好，我们一起去公园散步吧。这个城市的春天非常美丽。", "zh-Hans"),
        ("今天天氣很好，我們一起去公園散步吧。這個城市的春天非常美麗。", "zh-Hant"),
        ("今日はとても良い天気なので、公園を散歩しましょう。", "ja"),
        ("오늘은 날씨가 정말 좋아서 공원에 산책하러 갑시다.", "ko"),
        ("Сегодня прекрасная погода, давайте погуляем в парке.", "ru"),
        ("Hoy hace un tiempo estupendo, vamos a pasear por el parque.", "es"),
        ("Heute ist das Wetter wunderbar, lass uns im Park spazieren gehen.", "de"),
        ("الطقس جميل اليوم، دعونا نتمشى في الحديقة معا.", "ar"),
        ("The weather is lovely today, so let us take a walk in the park.", "en"),
        ("Il fait très beau aujourd'hui, allons nous promener dans le parc.", "fr"),
    ],
)
def test_detects_clear_sentences(text, code):
    assert detect_language(text) == code
    assert detect_language(text) == code  # deterministic


def test_detection_abstains_on_text_without_letters():
    assert detect_language("") is None
    assert detect_language("12345 !!! 😀") is None


def test_detection_library_is_imported_lazily():
    code = "import lmdesk.core.text.languages, sys; print('py3langid' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
