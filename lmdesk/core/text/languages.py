"""Languages offered by the Translate pane, and detection of a text's language.

Detection uses py3langid (a maintained fork of langid.py: a 4.6 MB pure-Python wheel on numpy,
naive Bayes, deterministic — no seed needed). It is imported lazily on the first call, so GUI
start-up never pays for it; its model loads in ~0.6 s on this machine. lingua-language-detector
was considered: more accurate on short text, but its wheel is 96 MB — too heavy for a bundle.
langid cannot tell Simplified from Traditional Chinese, so a small character table does that.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

AUTO = "auto"  # the source-language choice that means "detect it"


@dataclass(frozen=True)
class Language:
    """One language: BCP-47-ish code, English name (used in prompts), native name, direction."""

    code: str
    name: str
    native: str
    rtl: bool = False

    @property
    def label(self) -> str:
        """What a picker shows, e.g. 'German — Deutsch'."""
        return self.name if self.native == self.name else f"{self.name} — {self.native}"


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "English"),
    Language("zh-Hans", "Chinese (Simplified)", "简体中文"),
    Language("zh-Hant", "Chinese (Traditional)", "繁體中文"),
    Language("ja", "Japanese", "日本語"),
    Language("ko", "Korean", "한국어"),
    Language("ar", "Arabic", "العربية", rtl=True),
    Language("he", "Hebrew", "עברית", rtl=True),
    Language("fa", "Persian", "فارسی", rtl=True),
    Language("ur", "Urdu", "اردو", rtl=True),
    Language("ru", "Russian", "Русский"),
    Language("uk", "Ukrainian", "Українська"),
    Language("es", "Spanish", "Español"),
    Language("fr", "French", "Français"),
    Language("de", "German", "Deutsch"),
    Language("pt", "Portuguese", "Português"),
    Language("it", "Italian", "Italiano"),
    Language("nl", "Dutch", "Nederlands"),
    Language("pl", "Polish", "Polski"),
    Language("cs", "Czech", "Čeština"),
    Language("sv", "Swedish", "Svenska"),
    Language("da", "Danish", "Dansk"),
    Language("no", "Norwegian", "Norsk"),
    Language("fi", "Finnish", "Suomi"),
    Language("el", "Greek", "Ελληνικά"),
    Language("tr", "Turkish", "Türkçe"),
    Language("hu", "Hungarian", "Magyar"),
    Language("ro", "Romanian", "Română"),
    Language("hi", "Hindi", "हिन्दी"),
    Language("bn", "Bengali", "বাংলা"),
    Language("th", "Thai", "ไทย"),
    Language("vi", "Vietnamese", "Tiếng Việt"),
    Language("id", "Indonesian", "Bahasa Indonesia"),
    Language("ms", "Malay", "Bahasa Melayu"),
)

_BY_CODE = {lang.code.lower(): lang for lang in LANGUAGES}
# Other spellings users (and the CLI's --to/--from) commonly type.
_ALIASES = {
    "zh": "zh-Hans", "zh-cn": "zh-Hans", "zh-sg": "zh-Hans", "zh-hans-cn": "zh-Hans",
    "chinese": "zh-Hans", "simplified chinese": "zh-Hans", "traditional chinese": "zh-Hant",
    "zh-tw": "zh-Hant", "zh-hk": "zh-Hant", "zh-mo": "zh-Hant", "zh-hant-tw": "zh-Hant",
    "iw": "he", "nb": "no", "nn": "no", "in": "id", "pt-br": "pt", "pt-pt": "pt",
    "en-us": "en", "en-gb": "en", "farsi": "fa",
}


def get_language(code: str) -> Language:
    """The language with exactly this code (case-insensitive) or an alias; KeyError if unknown."""
    lang = find_language(code)
    if lang is None:
        raise KeyError(code)
    return lang


def find_language(query: str) -> Language | None:
    """Look up by code, alias, English name or native name (case-insensitive); None if unknown."""
    q = query.strip().lower().replace("_", "-")
    if q in _BY_CODE:
        return _BY_CODE[q]
    if q in _ALIASES:
        return _BY_CODE[_ALIASES[q].lower()]
    for lang in LANGUAGES:
        if q in (lang.name.lower(), lang.native.lower()):
            return lang
    return None


def is_rtl(code: str) -> bool:
    """True for right-to-left languages (the output view switches its direction)."""
    lang = find_language(code)
    return bool(lang and lang.rtl)


def language_name(code: str) -> str:
    """English name for prompts; unknown codes are returned as given (the model may know them)."""
    lang = find_language(code)
    return lang.name if lang else code


# --- detection -------------------------------------------------------------------------------

_SAMPLE_CHARS = 2000  # a 2,000-character sample decides as well as 1 MB and keeps it instant
_MIN_CONFIDENCE = 0.5
_identifier = None
_identifier_lock = threading.Lock()

# Characters whose form differs between the two scripts, among the most frequent in text.
_TRADITIONAL = set("這個們說來時會對國學為與麼還後於過樣見現開東長門問間關頭點體話讓從當發經進動種語書車電網愛氣實邊難歡聽買賣嗎們無萬業們義認極華覺應該樂寫條專將滿讀")
_SIMPLIFIED = set("这个们说来时会对国学为与么还后于过样见现开东长门问间关头点体话让从当发经进动种语书车电网爱气实边难欢听买卖吗无万业义认极华觉应该乐写条专将满读")


def _script_counts(sample: str) -> tuple[int, int, int, int]:
    """Counts of (Han, kana, Hangul, letters) in a sample."""
    han = kana = hangul = letters = 0
    for ch in sample:
        o = ord(ch)
        if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
            han += 1
        elif 0x3040 <= o <= 0x30FF:
            kana += 1
        elif 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF:
            hangul += 1
        if ch.isalpha():
            letters += 1
    return han, kana, hangul, letters


def _chinese_variant(sample: str) -> str:
    """zh-Hant when Traditional-only forms outnumber Simplified-only ones, else zh-Hans."""
    trad = sum(1 for ch in sample if ch in _TRADITIONAL)
    simp = sum(1 for ch in sample if ch in _SIMPLIFIED)
    return "zh-Hant" if trad > simp else "zh-Hans"


def _get_identifier():
    """The py3langid identifier, loaded once on first use (lazy: never at GUI start-up)."""
    global _identifier
    with _identifier_lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier


def detect_language(text: str) -> str | None:
    """The code (from LANGUAGES) of the text's language, or None when unsure or unsupported."""
    sample = text[:_SAMPLE_CHARS]
    han, kana, hangul, letters = _script_counts(sample)
    if letters < 3:
        return None
    # Scripts decide these outright: any real amount of kana means Japanese (Japanese text mixes
    # kana and kanji; Chinese has no kana), Hangul means Korean, Han alone means Chinese.
    if kana >= 2 and kana >= 0.05 * letters:
        return "ja"
    if hangul > 0.5 * letters:
        return "ko"
    if han > 0.5 * letters:
        return _chinese_variant(sample)
    code, confidence = _get_identifier().classify(sample)
    if confidence < _MIN_CONFIDENCE:
        return None
    if code == "zh":
        return _chinese_variant(sample)
    lang = find_language(code)
    return lang.code if lang else None
