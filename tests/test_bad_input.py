"""Bad input, catalogued: every kind the product meets, each giving a clear, specific error and losing
nothing that was good. One table per entry point, plus property-based tests (hypothesis) of the HIT
form's rules and of the MTurk answer parser. The README counts the cases tried here."""

from __future__ import annotations

import io
import re
import unicodedata
import zlib
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from annotator.forms import DESCRIPTION_MAX, HitAnswerForm
from annotator.labels import normalise
from annotator.models import Answer, AutoLabel, Campaign, Hit, Image, Unit
from mturk.question import AnswerXMLError, answers_xml, parse_answers
from pipeline.images import UnreadableImage, load_rgb
from pipeline.networks import NetworkError, WeightsMismatch, build_network, load_weights, read_state_dict
from tests.factories import concept_network, put_on_mturk


def _png_bomb() -> bytes:
    """A valid PNG header that claims 30,000 x 30,000 pixels: PIL's bomb check refuses it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (30000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    data = chunk(b"IDAT", zlib.compress(b"\0" * 100))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + data + chunk(b"IEND", b"")


def _jpeg(size: int = 32) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (size, size), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


IMAGE_FILES = {
    "truncated JPEG": (lambda: _jpeg()[:200], "(?i)truncated|broken data stream"),
    "zero-size file": (lambda: b"", "cannot identify image file"),
    "text file named .jpg": (lambda: b"not an image at all\n" * 20, "cannot identify image file"),
    "decompression bomb": (_png_bomb, "too large to decode safely"),
    "random bytes named .png": (lambda: bytes(range(256)) * 8, "cannot identify image file"),
}


@pytest.mark.parametrize("kind", IMAGE_FILES)
def test_unreadable_images_say_why(tmp_path: Path, kind: str) -> None:
    make, reason = IMAGE_FILES[kind]
    path = tmp_path / "bad.jpg"
    path.write_bytes(make())
    with pytest.raises(UnreadableImage, match=reason):
        load_rgb(path)


WEIGHTS = {
    "not a torch file": (lambda p: p.write_bytes(b"garbage"), NetworkError, "Cannot read weights file"),
    "missing file": (lambda p: None, NetworkError, "Weights file not found"),
    "another network's weights": (
        lambda p: torch.save(build_network("alexnet").model.state_dict(), p),
        WeightsMismatch,
        "Unexpected keys .*features.8.weight",
    ),
    "wrong shapes": (
        lambda p: torch.save(
            {**build_network("demo").model.state_dict(), "features.0.weight": torch.zeros(8, 3, 5, 5)}, p
        ),
        WeightsMismatch,
        r"Shape mismatch for features.0.weight: network has \[32, 3, 5, 5\], file has ",
    ),
}


@pytest.mark.parametrize("kind", WEIGHTS)
def test_weights_that_do_not_fit_name_the_keys(tmp_path: Path, kind: str) -> None:
    write, error, message = WEIGHTS[kind]
    path = tmp_path / "w.pt"
    write(path)
    with pytest.raises(error, match=message):
        load_weights(build_network("demo").model, read_state_dict(path))


@pytest.mark.django_db
def test_unknown_layers_are_all_named_before_any_work(image_dir: Path) -> None:
    with pytest.raises(CommandError, match="Unknown layer\\(s\\): conv9, features.99"):
        call_command(
            "dissect",
            "--network",
            "demo",
            "--layers",
            "conv3,conv9,features.99",
            "--images",
            str(image_dir),
            "--name",
            "x",
            "--quiet",
        )
    assert not Image.objects.exists()


@pytest.fixture
def hit(world_dir) -> Hit:
    concept_network(world_dir, concepts=("car", "house"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--images-per-hit", "20")
    return put_on_mturk("c")[0]


FORM = {  # field changes -> the message the re-shown form marks
    "missing description": ({"description": ""}, "Write one or two words"),
    "overlong description": ({"description": "car " * 20}, "64 characters or fewer"),
    "script in the description": ({"description": "<script>alert(1)</script>"}, "words only"),
    "template braces": ({"description": "{{ secret }}"}, "words only"),
    "control character": ({"description": "car\x07"}, "words only"),
    "missing category": ({"category": ""}, "Choose the category"),
    "forged category": ({"category": "animal"}, "Choose one of the six categories"),
    "image not in the HIT": ({"mismatch": ["999"]}, "Image 999 is not part of this HIT"),
    "non-numeric image": ({"mismatch": ["x"]}, "Image x is not part of this HIT|whole number|valid choice"),
    "forged token": ({"token": "1:forged"}, "token is missing or not valid"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", FORM)
def test_bad_hit_submissions_reshow_the_form_and_store_nothing(hit: Hit, kind: str) -> None:
    client = Client()
    page = client.get(
        f"/hit/{hit.key}/",
        {"assignmentId": "A1", "hitId": "H1", "workerId": "W1", "turkSubmitTo": "https://workersandbox.mturk.com"},
    ).content.decode()
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    change, message = FORM[kind]
    data = {"token": token, "description": "car", "category": "object", "mismatch": [], **change}
    response = client.post(f"/hit/{hit.key}/", data)
    html = response.content.decode()
    assert response.status_code == 400 and re.search(message, html), kind
    if kind != "forged token":  # the worker's answers come back with the problem marked
        kept = data["description"] if kind.endswith("description") and data["description"] else None
        assert kept is None or (kept.strip()[:10] in html or "&lt;script&gt;" in html)
        assert "error" in html
    assert not Answer.objects.exists()


@pytest.mark.django_db
def test_unknown_and_finished_hits_and_foreign_assignments(hit: Hit) -> None:
    client = Client()
    assert client.get("/hit/00000000-0000-0000-0000-000000000000/", {"assignmentId": "A"}).status_code == 404
    client.get(f"/hit/{hit.key}/", {"assignmentId": "A1", "workerId": "W1", "hitId": "H1"})
    taken = client.get(f"/hit/{hit.key}/", {"assignmentId": "A1", "workerId": "W2", "hitId": "H1"})
    assert taken.status_code == 400 and "another HIT or worker" in taken.content.decode()
    Campaign.objects.update(status="finished")
    finished = client.get(f"/hit/{hit.key}/", {"assignmentId": "A9", "workerId": "W9"})
    assert finished.status_code == 410 and "finished" in finished.content.decode()


MTURK_ANSWERS = {
    "not XML": ("<Answer>", "not well-formed"),
    "another document": ("<html/>", "root element is 'html'"),
    "no identifier": (
        "<QuestionFormAnswers><Answer><FreeText>car</FreeText></Answer></QuestionFormAnswers>",
        "no QuestionIdentifier",
    ),
    "empty": ("   ", "empty"),
    "bad answer inside good XML": (answers_xml({"description": "<b>car</b>", "category": "object"}), "words only"),
    "unknown category": (answers_xml({"description": "car", "category": "animal"}), "six categories"),
    "image not in the HIT": (
        answers_xml({"description": "car", "category": "object", "mismatch": "5,999"}),
        "not part of this HIT",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", MTURK_ANSWERS)
def test_malformed_mturk_answers_are_named(hit: Hit, kind: str) -> None:
    from annotator.crowds.mturk.sync import parse_mturk_answer

    xml, message = MTURK_ANSWERS[kind]
    with pytest.raises(ValueError, match=message):
        parse_mturk_answer(hit, xml)


@pytest.mark.django_db
def test_import_files_with_bad_rows_keep_the_good_ones(tmp_path: Path, capsys) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text(
        "net,layer,unit,desc1,cat1,prec1,desc2,cat2,prec2\n"
        "n,pool5,0,car,2,0.9,cars,2,0.8\n"
        "n,pool5,-1,car,2,0.9,,,\n"
        "n,pool5,1,sky,9,0.5,,,\n"
        "n,pool5,2,,2,0.5,,,\n"
        "n,pool5,3,tree,2,1.7,,,\n"
    )
    call_command("import_annotations", str(wide), "--network", "n")
    err = capsys.readouterr().err
    for number in (3, 4, 5, 6):
        assert f"row {number}:" in err
    assert Answer.objects.count() == 2 and Unit.objects.get().index == 0
    tally = tmp_path / "tally.csv"
    tally.write_text("unit,category,label,score\n1,object,car,0.2\n0,object,x,0.1\nq,object,y,0.1\n")
    call_command("import_netdissect", str(tally), "--network", "n", "--layer", "pool5")
    assert "row 3:" in capsys.readouterr().err and AutoLabel.objects.count() == 1
    with pytest.raises(CommandError, match="unknown columns"):
        (tmp_path / "odd.csv").write_text("a,b\n1,2\n")
        call_command("import_annotations", str(tmp_path / "odd.csv"), "--network", "n")


@pytest.mark.django_db
def test_publish_refuses_bad_external_urls_before_calling_mturk(hit: Hit, stubbed_mturk) -> None:
    Campaign.objects.update(platform="", environment="", status="draft")
    for url, message in (
        ("http://example.org", "must use https"),
        ("https://no-such-host.invalid", "does not resolve"),
        ("https://", "not a site address"),
        ("javascript:alert(1)", "not a site address"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("publish", "c", "--external-url", url)


# Bad input that used to crash or slip through (issue 13) ------------------------------------------


@pytest.mark.django_db
def test_the_media_view_serves_only_files_inside_the_store(admin_client, media_root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not an artifact")
    (media_root / "dissections").mkdir(parents=True)
    (media_root / "dissections" / "leak.png").symlink_to(secret)
    (media_root / "dissections" / "ok.png").write_bytes(b"\x89PNG")
    assert admin_client.get("/dashboard/media/dissections/ok.png").status_code == 200
    for path in ("dissections/leak.png", "dissections", "dissections/", "../secret.txt"):
        response = admin_client.get(f"/dashboard/media/{path}")
        assert response.status_code == 404, path


INVISIBLE = {
    "zero-width spaces": "\u200b\u200b\u200b",
    "a zero-width joiner inside a word": "ca\u200dr",
    "bidi override": "\u202ecar",
    "tag characters": "\U000e0063\U000e0061\U000e0072",
    "byte-order mark": "\ufeffcar",
}


@pytest.mark.parametrize("kind", INVISIBLE)
def test_invisible_descriptions_are_refused(kind: str) -> None:
    form = HitAnswerForm({"description": INVISIBLE[kind], "category": "object"}, positions=[0])
    assert not form.is_valid() and "invisible" in form.errors["description"][0], kind


@pytest.mark.parametrize(("text", "expected"), [("ｃａｒ", "car"), ("ﬁre", "fire"), ("car\u00a0park", "car park")])
def test_descriptions_are_nfkc_normalised(text: str, expected: str) -> None:
    form = HitAnswerForm({"description": text, "category": "object"}, positions=[0])
    assert form.is_valid() and form.cleaned_data["description"] == expected


def test_a_description_with_no_words_is_refused() -> None:
    form = HitAnswerForm({"description": "?! ...", "category": "object"}, positions=[0])
    assert not form.is_valid() and "in words" in form.errors["description"][0]


@pytest.fixture
def local_answer(world_dir):
    from tests.factories import answer_hit

    concept_network(world_dir, concepts=("car",))
    call_command("create_campaign", "n", "--network", "world", "--layers", "conv3", "--answers-per-unit", "1")
    call_command("publish", "n", "--backend", "local")
    return answer_hit(Hit.objects.get(), "w1", "car", "object")


NUMBERS = {  # (url, form) -> the message the dashboard shows instead of a 500 or a Python error
    "NaN bonus": (lambda a: f"/dashboard/answer/{a.pk}/bonus/", {"amount": "NaN", "reason": "x"}, "amount of dollars"),
    "infinite bonus": (
        lambda a: f"/dashboard/answer/{a.pk}/bonus/",
        {"amount": "Infinity", "reason": "x"},
        "amount of dollars",
    ),
    "bonus in fractions of a cent": (
        lambda a: f"/dashboard/answer/{a.pk}/bonus/",
        {"amount": "0.001", "reason": "x"},
        "whole cents",
    ),
    "answers as text": (
        lambda a: f"/dashboard/unit/{a.unit_id}/review/",
        {"action": "send_back", "more": "two"},
        "whole number",
    ),
    "answers as nan": (
        lambda a: f"/dashboard/unit/{a.unit_id}/review/",
        {"action": "send_back", "more": "nan"},
        "whole number",
    ),
    "rule time as nan": (
        lambda a: f"/dashboard/campaign/{a.hit.campaign_id}/action/",
        {"action": "review", "approve_passing": "1", "min_seconds": "nan"},
        "number of seconds",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", NUMBERS)
def test_numbers_in_the_dashboard_get_a_clear_message(admin_client, local_answer, kind: str) -> None:
    url, form, message = NUMBERS[kind]
    response = admin_client.post(url(local_answer), form, follow=True)
    html = response.content.decode()
    assert response.status_code == 200 and message in html, kind
    assert "invalid literal" not in html and "InvalidOperation" not in html
    assert Answer.objects.get().review == "submitted"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["bonus", "A1", "--amount", "nan", "--reason", "x"], "amount of dollars"),
        (["review", "n", "--approve-passing", "--min-seconds", "nan"], "argument --min-seconds: 'nan' is not a number"),
        (["aggregate", "--threshold", "inf"], "argument --threshold: 'inf' is not a number from 0 to 1"),
        (["simulate_crowd", "n", "--spammers", "1.5"], "argument --spammers: '1.5' is not a number from 0 to 1"),
    ],
)
def test_numbers_on_the_command_line_get_a_clear_message(local_answer, command, message) -> None:
    from annotator.models import Assignment

    Assignment.objects.update(external_id="A1")
    Answer.objects.update(source="mturk")
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command(*command)


@pytest.mark.django_db
def test_a_formula_in_a_label_reaches_no_spreadsheet(local_answer, tmp_path: Path) -> None:
    from annotator.services.review import Reviewer, unit_override

    unit_override(unit_id=local_answer.unit_id, reviewer=Reviewer("r"), label='=HYPERLINK("http://evil","x")')
    for fmt in ("csv", "tally"):
        out = tmp_path / f"units.{fmt}"
        call_command("export", "--format", fmt, "--network", "world", "--output", str(out))
        text = out.read_text()
        assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text and '"=HYPERLINK' not in text, fmt


@pytest.mark.django_db
def test_imports_report_undecodable_huge_and_out_of_range_rows_and_keep_the_rest(tmp_path: Path, capsys) -> None:
    path = tmp_path / "answers.csv"
    path.write_bytes(
        b"network,layer,unit,worker,description,category,precision\n"
        b"n,conv3,0,w1,car,object,0.9\n"
        b"n,conv3,1,w1,caf\xe9 latin-1,object,0.9\n"
        b"n,conv3,12345678901234567890,w1,car,object,0.9\n"
        b"n,conv3,2,w1," + b"x" * 200_000 + b",object,0.9\n"
        b"n,conv3,3,w1,\xe2\x80\x8b,object,0.9\n"
        b"n,conv3,4,w1," + b"y" * 300 + b",object,0.9\n"
        b"n,conv3,5,w1,sky,region,0.5\n"
    )
    call_command("import_annotations", str(path), "--network", "n")
    err = capsys.readouterr().err
    for row, reason in (
        (3, "not UTF-8"),
        (4, "out of range"),
        (5, "cannot be read"),
        (6, "invisible"),
        (7, "200 characters or fewer"),
    ):
        assert re.search(f"row {row}: .*{reason}", err), (row, err)
    assert sorted(Answer.objects.values_list("unit__index", "description")) == [(0, "car"), (5, "sky")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--layers", ","], "names no layer"),
        (["--layers", " , "], "names no layer"),
        (["--layers", "conv3", "--mean", "1,2"], "argument --mean: expected three numbers R,G,B"),
        (["--layers", "conv3", "--std", "1,nan,1"], "argument --std: expected three numbers R,G,B"),
    ],
)
def test_dissect_refuses_bad_options_before_any_work(image_dir: Path, options, message) -> None:
    from annotator.models import Dissection

    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("dissect", "--network", "demo", "--images", str(image_dir), "--quiet", *options)
    assert not Dissection.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("network", "message"),
    [
        ("os:system", "Calling os:system() to build the network failed: TypeError"),
        ("os:sep", "os:sep is a str, not a function"),
        ("json:loads", "Calling json:loads() to build the network failed"),
        (":x", "is not an import path"),
    ],
)
def test_a_network_import_path_that_builds_no_network_is_named(image_dir: Path, network, message) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("dissect", "--network", network, "--layers", "x", "--images", str(image_dir), "--quiet")


@pytest.mark.django_db
def test_export_into_a_missing_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export", "--format", "csv", "--output", str(tmp_path / "nowhere" / "units.csv"))


# Properties ---------------------------------------------------------------------------------------

POSITIONS = list(range(12))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    description=st.text(max_size=90),
    category=st.text(max_size=12),
    marks=st.lists(st.integers(min_value=-5, max_value=20), max_size=8),
)
def test_the_form_accepts_exactly_what_its_rules_allow(description: str, category: str, marks: list[int]) -> None:
    form = HitAnswerForm(
        {"description": description, "category": category, "mismatch": [str(m) for m in marks]}, positions=POSITIONS
    )
    valid = form.is_valid()  # never raises, whatever comes in
    stripped = description.strip()
    words = " ".join(unicodedata.normalize("NFKC", stripped).split())  # NFKC; runs of white space count as one
    visible = not any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cn", "Cs") for c in words)
    allowed = (
        bool(words)
        and len(stripped) <= DESCRIPTION_MAX
        and len(words) <= DESCRIPTION_MAX
        and visible
        and not re.search(r"[<>{}\\`\x00-\x1f\x7f]", words)
        and bool(normalise(words))
        and category in {"scene", "object", "region", "part", "texture", "color"}
        and all(m in POSITIONS for m in marks)
    )
    assert valid == allowed, (description, category, marks, form.errors.as_json())
    if valid:
        assert form.cleaned_data["description"] == words
        assert set(form.cleaned_data["mismatch"]) == set(marks)


XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff").filter(
        lambda c: c in "\t\n" or ord(c) >= 32
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True), XML_TEXT, max_size=6))
def test_answer_xml_round_trips(fields: dict[str, str]) -> None:
    parsed = parse_answers(answers_xml(fields))
    assert parsed == {k: v.replace("\r", "\n") for k, v in fields.items()}


@settings(max_examples=300, deadline=None)
@given(xml=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_the_answer_parser_names_every_failure(xml: str) -> None:
    try:
        result = parse_answers(xml)
    except AnswerXMLError as error:
        assert str(error)
    else:
        assert isinstance(result, dict)


# One person, one vote and commands that refuse bad arguments (issue 25) ----------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("big", ["--reward", "1e9"], "--reward must be between 0 and 100.00 US dollars"),
        ("nan", ["--reward", "NaN"], "argument --reward: invalid money value"),
        ("inf", ["--reward", "inf"], "argument --reward: invalid money value"),
        ("", [], "Campaign name ''"),
        ("  padded", [], "Campaign name '  padded'"),
        ("bell\x07", [], "Campaign name 'bell\\x07'"),
        ("x" * 101, [], "use 1 to 100 letters"),
        ("many", ["--answers-per-unit", "5000"], "--answers-per-unit must be at most 100"),
        ("long", ["--assignment-minutes", "99999999"], "--assignment-minutes must be between 1 and 10080"),
    ],
)
def test_create_campaign_refuses_bad_names_and_numbers_and_creates_nothing(
    world_dir, admin_client, name, extra, message
) -> None:
    concept_network(world_dir, concepts=("car", "house"))
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("create_campaign", name, "--network", "world", "--layers", "conv3", *extra)
    assert not Campaign.objects.exists()
    assert admin_client.get("/dashboard/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--std", "0,0,0"], "--std must be three positive numbers"),
        (["--std=-1,1,1"], "--std must be three positive numbers"),
        (["--input-size", "0"], "--input-size must be between 16 and 4,096, not 0"),
        (["--rf-images", "0"], "--rf-images must be between 1 and --top-k (60), not 0"),
        (["--rf-images", "-3"], "--rf-images must be between 1 and --top-k (60), not -3"),
        (["--top-k", "99999999999"], "--top-k must be between 1 and 10,000"),
        (["--seed", "-1"], "--seed must be between 0 and 4,294,967,295, not -1"),
        (["--network", "sys:exit"], "Calling sys:exit() to build the network failed: SystemExit"),
        (["--network", "..:x"], "Cannot import '..' for network '..:x'"),
    ],
)
def test_dissect_refuses_numbers_it_cannot_run_with_and_writes_no_record(image_dir: Path, options, message) -> None:
    from annotator.models import Dissection, Network

    args = ["dissect", "--network", "demo", "--layers", "conv3", "--images", str(image_dir), "--quiet"]
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command(*args, *options)
    assert not Dissection.objects.exists() and not Network.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--auto-approval-hours=-1"], "--auto-approval-hours must be between 0 and 720, not -1"),
        (["--lifetime-hours", "0"], "--lifetime-hours must be between 1 and 8,760, not 0"),
        (["--frame-height=-5"], "--frame-height must be between 0 and 10,000, not -5"),
        (["--min-approval-rate", "150"], "--min-approval-rate must be between 0 and 100, not 150"),
        (["--locale", "XX,,"], "--locale '', '': give countries as ISO codes"),
        (["--locale", "us"], "--locale 'us'"),
        (["--external-url", "https://example.org:99999"], "has a port out of range"),
    ],
)
def test_publish_refuses_settings_mturk_would_refuse_before_any_call(hit: Hit, stubbed_mturk, options, message) -> None:
    Campaign.objects.update(platform="", environment="", status="draft")
    args = ["publish", "c", "--backend", "sandbox", "--external-url", "https://127.0.0.1", "--yes", *options]
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command(*args)
    stubbed_mturk.assert_no_pending_responses()
    assert not Hit.objects.exclude(remote_id="").filter(campaign__name="c", remote_id__startswith="3").exists()


@pytest.mark.django_db
def test_imports_count_one_answer_a_worker_and_unit_and_refuse_bad_names(tmp_path: Path, capsys) -> None:
    path = tmp_path / "answers.csv"
    path.write_text(
        "network,layer,unit,worker,description,category,precision\n"
        "n,conv3,0,w1,car,object,0.9\n"
        "n,conv3,0,w1,truck,object,0.9\n"  # the same worker and unit again
        "n,../etc,1,w1,car,object,0.9\n"
        "n,con\x07v3,2,w1,car,object,0.9\n"
        f"n,conv3,3,{'w' * 300},car,object,0.9\n"
        "n,conv3,4,w2,sky,region,0.5\n"
    )
    call_command("import_annotations", str(path), "--network", "n")
    err = capsys.readouterr().err
    for row, reason in (
        (3, "answered conv3 unit 0 already \\(row 2\\)"),
        (4, "control characters or a path"),
        (5, "control characters or a path"),
        (6, "worker has 300 characters"),
    ):
        assert re.search(f"row {row}: .*{reason}", err), (row, err)
    assert sorted(Answer.objects.values_list("unit__index", "description")) == [(0, "car"), (4, "sky")]
    call_command("import_annotations", str(path), "--network", "n")  # again: nothing new, nothing doubled
    assert Answer.objects.count() == 2
    other = tmp_path / "more.csv"
    other.write_text("network,layer,unit,worker,description,category,precision\nn,conv3,0,w1,bus,object,0.9\n")
    call_command("import_annotations", str(other), "--network", "n")
    assert "already (an earlier import)" in capsys.readouterr().err and Answer.objects.count() == 2
    for network, message in (("", "empty network"), ("n" * 5000, "network has 5000 characters")):
        with pytest.raises(CommandError, match=re.escape(message)):
            call_command("import_annotations", str(path), "--network", network)


WEIRD = {
    "combining marks only": "\u0301\u0301\u0301",
    "stacked marks": "c\u0301\u0302\u0303\u0304\u0305ar",
    "Hangul fillers": "\u3164\u3164",
    "a Hangul filler inside a word": "ca\u3164r",
    "braille blank": "\u2800car",
    "bytes that are not text": "car\ufffd",
}


@pytest.mark.parametrize("kind", WEIRD)
def test_descriptions_of_marks_blanks_and_undecodable_bytes_are_refused(kind: str) -> None:
    form = HitAnswerForm({"description": WEIRD[kind], "category": "object"}, positions=[0])
    assert not form.is_valid(), kind
    assert re.search("invisible|accents belong on a letter|words", form.errors["description"][0]), kind
    assert HitAnswerForm({"description": "café", "category": "object"}, positions=[0]).is_valid()
    assert HitAnswerForm({"description": "cafe\u0301", "category": "object"}, positions=[0]).is_valid()


@pytest.mark.django_db
def test_invalid_utf8_posted_to_the_hit_page_is_refused_and_stored_nowhere(hit: Hit) -> None:
    client = Client()
    page = client.get(f"/hit/{hit.key}/", {"assignmentId": "A1", "workerId": "W1", "hitId": hit.remote_id})
    token = re.search(r'name="token" value="([^"]+)"', page.content.decode()).group(1)
    body = b"token=" + token.encode() + b"&category=object&description=car%FF%FE"
    response = client.post(f"/hit/{hit.key}/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and not Answer.objects.exists()


def test_static_files_may_not_be_framed(client) -> None:
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in response["Content-Security-Policy"]
