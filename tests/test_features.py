"""Post-level evidence: disclosure vs request vs reply, with the spans that show it."""

from __future__ import annotations

import pytest

from postkit.coding.features import FEATURE_NAMES, feature_spans, post_features

DISCLOSURE = ("I have been struggling for months now. I lost my job in March and I stopped sleeping, and I felt "
              "like I was letting everyone down. I never told my family. Sorry this is so long, thanks for reading.")
REQUEST = "Does anyone know if the waiting list for a psychologist is long? Any advice welcome. Thanks in advance!"
REPLY = ("I'm so sorry to hear you are going through this. Have you tried talking to your GP? You should "
         "also make sure you get some rest. Hope this helps.")


def test_a_disclosure_a_request_and_a_reply_look_different() -> None:
    disclosure, request, reply = (post_features(t) for t in (DISCLOSURE, REQUEST, REPLY))
    assert disclosure["thanks_reading"] > 0 and disclosure["thanks_for_help"] == 0
    assert disclosure["first_person"] > reply["first_person"] and disclosure["thanks_at_end"] == 1.0
    assert disclosure["questions"] == 0 and disclosure["past_narrative"] > 0.5
    assert request["thanks_for_help"] > 0 and request["request"] > 0 and request["question_at_end"] == 1.0
    assert request["questions"] > 0 and request["thanks_reading"] == 0
    assert reply["you_advice"] > 0 and reply["peer_reply"] > 0 and reply["second_person"] > disclosure["second_person"]


def test_values_are_named_and_bounded() -> None:
    for text in (DISCLOSURE, REQUEST, REPLY, "", None, "?" * 50, "thanks for reading " * 40):
        values = post_features(text)
        assert tuple(values) == FEATURE_NAMES
        assert all(0.0 <= v <= 1.0 for v in values.values())
    assert all(v == 0.0 for v in post_features("").values())


@pytest.mark.parametrize("text,name,expected", [
    (DISCLOSURE, "thanks_reading", "thanks for reading"),
    ("Thank you so much for letting me vent.", "thanks_reading", "Thank you so much for letting me vent"),
    (REQUEST, "thanks_for_help", "Thanks in advance"),
    ("thanks for any help you can give", "thanks_for_help", "thanks for any help"),
    ("Thank you for your question.", "thanks_for_question", "Thank you for your question"),
    (REPLY, "you_advice", "Have you tried"),
])
def test_spans_point_at_the_words(text: str, name: str, expected: str) -> None:
    spans = feature_spans(text)[name]
    assert expected in [text[s:e] for s, e in spans]
