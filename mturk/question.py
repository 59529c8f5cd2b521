"""The XML that MTurk exchanges with us: the ExternalQuestion that frames our HIT page, and the
QuestionFormAnswers in which MTurk returns what the page posted to externalSubmit."""

from __future__ import annotations

from urllib.parse import urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

EXTERNAL_QUESTION_NS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
)
ANSWERS_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"
MAX_FRAME_HEIGHT = 5000  # 0 lets MTurk size the frame to the page


class AnswerXMLError(ValueError):
    """QuestionFormAnswers that cannot be read; the message says where it breaks."""


def external_question(url: str, frame_height: int = 0) -> str:
    """ExternalQuestion XML for a page MTurk shows in a frame (it appends assignmentId, hitId,
    workerId and turkSubmitTo to the URL)."""
    if not 0 <= frame_height <= MAX_FRAME_HEIGHT:
        raise ValueError(f"The frame height must be between 0 and {MAX_FRAME_HEIGHT} pixels.")
    if urlsplit(url).scheme not in ("https", "http"):
        raise ValueError(f"{url!r} is not a web address.")
    return (
        f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_NS}">'
        f"<ExternalURL>{escape(url)}</ExternalURL><FrameHeight>{frame_height}</FrameHeight></ExternalQuestion>"
    )


def parse_answers(xml: str) -> dict[str, str]:
    """The fields of a QuestionFormAnswers document, by QuestionIdentifier. Values come from
    FreeText (what externalSubmit receives); a field with several selections joins them by commas."""
    if not xml or not xml.strip():
        raise AnswerXMLError("The answer is empty.")
    try:
        root = ElementTree.fromstring(xml)  # noqa: S314 - expat refuses external entities; MTurk's own XML
    except ElementTree.ParseError as error:
        raise AnswerXMLError(f"The answer is not well-formed XML ({error}).") from None
    if _local(root.tag) != "QuestionFormAnswers":
        raise AnswerXMLError(f"The answer's root element is {_local(root.tag)!r}, not QuestionFormAnswers.")
    fields: dict[str, str] = {}
    for answer in root:
        if _local(answer.tag) != "Answer":
            continue
        name, values = "", []
        for child in answer:
            tag = _local(child.tag)
            if tag == "QuestionIdentifier":
                name = (child.text or "").strip()
            elif tag == "FreeText":
                values.append(child.text or "")
            elif tag == "SelectionIdentifier":
                values.append((child.text or "").strip())
        if not name:
            raise AnswerXMLError("An answer has no QuestionIdentifier.")
        if name in fields:
            raise AnswerXMLError(f"The field {name!r} appears twice.")
        fields[name] = ",".join(values)
    return fields


def answers_xml(fields: dict[str, str]) -> str:
    """QuestionFormAnswers for these fields: what MTurk stores for an externalSubmit post (the local
    test service writes it, the tests compare against it)."""
    body = "".join(
        f"<Answer><QuestionIdentifier>{escape(k)}</QuestionIdentifier><FreeText>{escape(v)}</FreeText></Answer>"
        for k, v in fields.items()
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><QuestionFormAnswers xmlns="{ANSWERS_NS}">{body}</QuestionFormAnswers>'
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
