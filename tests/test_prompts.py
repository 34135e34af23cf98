"""Prompt builders for the Write and Translate panes, and the chatter-cleaning step."""

from __future__ import annotations

import pytest

from lmdesk.core.messages import ChatMessage
from lmdesk.core.text.reply_clean import TRANSLATE, clean_reply
from lmdesk.core.translate.glossary import GlossaryEntry, glossary_lines, parse_glossary
from lmdesk.core.translate.prompts import translate_messages
from lmdesk.core.write.actions import (
    ACTIONS,
    WriteAction,
    continuation_glue,
    max_new_tokens,
    parse_action,
    write_messages,
)

TEXT = "Their going to the libary tomorow, and they will borrow three books."


@pytest.mark.parametrize("action", [a for a in WriteAction if a is not WriteAction.CUSTOM])
def test_every_action_prompt_holds_the_text_and_its_instruction(action):
    msgs = write_messages(action, TEXT)
    assert all(isinstance(m, ChatMessage) for m in msgs)
    assert [m.role for m in msgs] == ["system", "user"]
    user = msgs[-1].content
    assert TEXT in user
    assert ACTIONS[action].instruction in user
    assert "same language" in user
    assert ACTIONS[action].label


def test_every_action_has_a_spec_and_a_cli_name():
    assert set(ACTIONS) == set(WriteAction)
    for action in WriteAction:
        assert parse_action(action.value) is action
        assert parse_action(ACTIONS[action].label) is action
    assert parse_action("Summarize") is WriteAction.SUMMARISE
    with pytest.raises(ValueError, match="unknown action"):
        parse_action("dance")


def test_custom_action_uses_the_users_instruction_and_requires_one():
    msgs = write_messages(WriteAction.CUSTOM, TEXT, instruction="Translate every noun into pirate speak")
    assert "pirate speak" in msgs[-1].content and TEXT in msgs[-1].content
    with pytest.raises(ValueError):
        write_messages(WriteAction.CUSTOM, TEXT, instruction="  ")


def test_proofread_asks_for_spelling_and_grammar_only():
    instruction = ACTIONS[WriteAction.PROOFREAD].instruction.lower()
    assert "spelling" in instruction and "grammar" in instruction and "change nothing else" in instruction


def test_continue_sends_text_before_and_after_the_cursor():
    before = "x" * 20_000 + "The storm was getting closer."
    msgs = write_messages(WriteAction.CONTINUE, before, after="By morning, the village was silent.")
    user = msgs[-1].content
    assert user.count("x") < 9000  # only the end of a long document is sent
    assert "The storm was getting closer." in user and "By morning, the village was silent." in user
    assert ACTIONS[WriteAction.CONTINUE].inserts
    assert "<after>" not in write_messages(WriteAction.CONTINUE, "Once upon a time")[-1].content


def test_continuation_glue():
    assert continuation_glue("It rained.", "Then") == " Then"
    assert continuation_glue("It rained. ", "Then") == "Then"
    assert continuation_glue("下雨了。", "然后") == "然后"
    assert continuation_glue("", "Then") == "Then"


def test_max_new_tokens_follows_the_action():
    assert max_new_tokens(WriteAction.EXPAND, 400) > max_new_tokens(WriteAction.SHORTEN, 400)
    assert max_new_tokens(WriteAction.SHORTEN, 1) == 128


def test_translate_prompt_with_languages_glossary_and_context():
    glossary = [GlossaryEntry("lmdesk"), GlossaryEntry("engine", "moteur"), GlossaryEntry("unused", "x")]
    msgs = translate_messages("The lmdesk engine is fast.", "fr", "en", glossary=glossary, context="Intro.")
    system, user = msgs[0].content, msgs[1].content
    assert "from English into French" in system
    assert '"lmdesk" → keep as is' in system and '"engine" → "moteur"' in system
    assert "unused" not in system  # entries the chunk doesn't use are left out
    overhead = translate_messages("", "fr", "en", glossary=glossary, filter_glossary=False)
    assert "unused" in overhead[0].content  # the upper bound used for the chunk budget
    assert "The lmdesk engine is fast." in user and "Intro." in user and "do not translate" in user
    auto = translate_messages("你好", "en")
    assert "Detect the language" in auto[0].content and "English" in auto[0].content
    assert translate_messages("hi", "zh-Hans")[1].content.endswith("hi")
    assert "Chinese (Simplified)" in translate_messages("hi", "zh-Hans")[0].content
    with pytest.raises(ValueError):
        translate_messages("hi", "auto")


def test_parse_glossary():
    entries = parse_glossary("# terms\nlmdesk\nengine = moteur\nGPU -> processeur graphique\n\nKV cache => cache KV\n")
    assert entries == [
        GlossaryEntry("lmdesk"), GlossaryEntry("engine", "moteur"),
        GlossaryEntry("GPU", "processeur graphique"), GlossaryEntry("KV cache", "cache KV"),
    ]
    assert len(glossary_lines(entries)) == 4


R = WriteAction.REWRITE
CLEANED = [
    # (reply, action, source, expected)
    ("Sure! Here is the rewritten text:\n\nThey are going to the library.", R, TEXT, "They are going to the library."),
    ("Here's the translation:\n\nBonjour le monde.", TRANSLATE, None, "Bonjour le monde."),
    ("Here is the translation: Hola.", TRANSLATE, None, "Hola."),
    ("Certainly! Here's a more formal version of your text:\nDear Sir,\nThank you.",
     WriteAction.FORMAL, "hey, thanks", "Dear Sir,\nThank you."),
    ("Translation:\nGuten Morgen.", TRANSLATE, None, "Guten Morgen."),
    ("**Corrected text:**\nThey're here.", WriteAction.PROOFREAD, "Their here.", "They're here."),
    ("Sure!\nThey are here.", R, "Their here.", "They are here."),
    ('"They are going to the library tomorrow."', R, TEXT, "They are going to the library tomorrow."),
    ("“Bonjour.”", TRANSLATE, None, "Bonjour."),
    ("```\nThey are here.\n```", WriteAction.PROOFREAD, "Their here.", "They are here."),
    ("```markdown\n- one\n- two\n```", WriteAction.BULLETS, "one and two", "- one\n- two"),
    ("<text>\nThey are here.\n</text>", R, "Their here.", "They are here."),
    ("They are here.\n\nLet me know if you'd like any other changes!", R, "Their here.", "They are here."),
    ("They are here.\nI hope this helps!", R, "Their here.", "They are here."),
    ("Bonjour.\n\n(Note: I translated 'hi' as 'bonjour'.)", TRANSLATE, None, "Bonjour."),
    ("Sure! Here is the summary:\n\nA storm hit.\n\nLet me know if you want a shorter version.",
     WriteAction.SUMMARISE, "long story", "A storm hit."),
    ("以下是翻译：\n你好，世界。", TRANSLATE, None, "你好，世界。"),
    # Trailing meta-comments seen with the real model: they name the edit, so they go.
    ("They are here.\n\nThe text has been edited with grammar and spelling corrections.",
     WriteAction.PROOFREAD, "Their here.", "They are here."),
    ("They are here.\nThe revised sentence has been rewritten for clarity.", R, "Their here.", "They are here."),
    ("They are here.\n\nI have corrected the spelling of 'their'.", WriteAction.PROOFREAD, "Their here.",
     "They are here."),
    ("Bonjour.\nThe text has been translated into French.", TRANSLATE, None, "Bonjour."),
]

KEPT = [
    # Content that looks like chatter but is not: it must survive untouched.
    ("Sure enough, it rained all day.", R, "it rained", "Sure enough, it rained all day."),
    ("Here is the key: keep it short.", R, "the key is short", "Here is the key: keep it short."),
    ("Here is the plan:\n1. Pack.\n2. Leave.", R, "Here is the plan: pack, leave.", None),
    ("Dear Sam,\nSee you soon.\nLet me know if you have any questions.", TRANSLATE, "亲爱的山姆…", None),
    ("Dear Sam,\nThe report is attached.\nLet me know if you need changes.", R,
     "sam, report attached. let me know if you need changes", None),
    ("I hope this helps.", TRANSLATE, "希望这有帮助。", None),
    ("He said: \"yes\" and \"no\".", R, "he said yes and no", None),
    ('"Yes," she said, "today."', R, "yes she said today", None),
    ("```python\nprint(1)\n```", WriteAction.PROOFREAD, "```python\nprint(1)\n```", None),
    ("Summary:\nThe year in review.", TRANSLATE, "Résumé :\nL'année en revue.", None),
    ("Here is the text of the agreement:\nBoth parties agree.", TRANSLATE, "协议文本如下：\n双方同意。", None),
    ("这是我的家：\n一个小房子。", TRANSLATE, "This is my home:\nA small house.", None),
    ("Note: the museum is closed on Mondays.", TRANSLATE, "Remarque : le musée est fermé le lundi.", None),
    ("Sure!", R, "sure", None),
    ("Translation:", TRANSLATE, None, None),
    # A last line that starts like chatter but says nothing about the edit is the user's content.
    ("We cooked pasta.\nI made dessert too.", R, "we cooked pasta and dessert", None),
    ("Thanks for the visit.\nI hope that you are well.", WriteAction.FORMAL, "thx for visiting, hope ur well", None),
    ("and then we left.\nI fixed the car.", WriteAction.CONTINUE, "We arrived late", None),
    ("The report is final.\nThe paragraph has been approved by the board.", R,
     "report final, paragraph approved by board", None),
    ("It rained.\nThe text has been edited by the newspaper.", TRANSLATE, "Il a plu.", None),
]


@pytest.mark.parametrize("reply,action,source,expected", CLEANED)
def test_clean_reply_removes_chatter(reply, action, source, expected):
    assert clean_reply(reply, action, source) == expected


@pytest.mark.parametrize("reply,action,source,expected", KEPT)
def test_clean_reply_never_removes_content(reply, action, source, expected):
    assert clean_reply(reply, action, source) == (expected if expected is not None else reply)


def test_clean_reply_strips_only_surrounding_whitespace_otherwise():
    assert clean_reply("  \n Plain text.\n\nSecond paragraph.\n ", R, "x") == "Plain text.\n\nSecond paragraph."
    assert clean_reply("   ", R, "x") == ""
