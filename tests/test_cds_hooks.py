"""The CDS Hooks face: discovery, hook calls, feedback and JWT, over HTTP in `faqbot serve`'s app.

Request fixtures (tests/data/cds_hooks/*.json) are shaped as the CDS Hooks 2.0.1 examples (order-select's
R4 example, patient-view, the feedback examples) and are checked against a request schema; responses are
validated against JSON Schemas written from the specification. The service needs no model or index.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.cds_hooks import SUMMARY_MAX, inline, md_escape, md_unescape, request_schema, spec_schema
from bot.core import Bot
from bot.server import create_app
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "cds_hooks"
SOURCE = "corpus/avutometinib_dose_modification.md"


def schema(name: str) -> dict[str, Any]:
    # the JSON Schemas written from the specification ship with faqbot: the routes validate requests
    # against them and /openapi.json documents the routes with them
    return spec_schema(name)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def valid(instance: Any, name: str) -> None:
    jsonschema.Draft202012Validator(
        schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(instance)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("cds")
    shutil.copytree(ROOT / "corpus", r / "corpus")
    return r


def make_client(root: Path, **overrides: Any) -> Any:
    from fastapi.testclient import TestClient

    settings = replace(Settings(root=root), **overrides)
    return TestClient(create_app(Bot(settings), settings), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(root: Path) -> Any:
    return make_client(root)


def call(client: Any, service: str, body: dict[str, Any], **kw: Any) -> Any:
    return client.post(f"/cds-services/{service}", json=body, **kw)


def row_chunk_id(start: int) -> str:
    from bot.chunking import chunk_documents
    from bot.corpus import load_corpus

    chunks = chunk_documents(load_corpus(ROOT / "corpus", ROOT))
    return next(c.id for c in chunks if c.source == SOURCE and c.start == start and c.kind == "table_row")


# ---- fixtures and discovery ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["order-select-request", "order-sign-request", "patient-view-request"])
def test_request_fixtures_are_spec_shaped(name: str) -> None:
    valid(fixture(name), "request")
    body = fixture(name)
    jsonschema.Draft202012Validator(request_schema(body["hook"])).validate(body)  # and their hook's context


@pytest.mark.parametrize("name", ["feedback-accepted", "feedback-overridden"])
def test_feedback_fixtures_are_spec_shaped(name: str) -> None:
    valid(fixture(name), "feedback")


def test_discovery_lists_order_and_patient_view_services_with_prefetch(client: Any) -> None:
    r = client.get("/cds-services")
    assert r.status_code == 200
    body = r.json()
    valid(body, "discovery")
    hooks = {s["hook"]: s for s in body["services"]}
    assert set(hooks) == {"order-select", "order-sign", "patient-view"}
    for s in body["services"]:
        prefetch = s["prefetch"]
        assert "code=http://loinc.org|2157-6&_sort=-date&_count=1" in prefetch["ck"]
        assert "code=http://loinc.org|2160-0&_sort=-date&_count=1" in prefetch["creatinine"]
        assert "code=http://loinc.org|2160-0&_sort=date&_count=1" in prefetch["creatinineBaseline"]
        assert prefetch["conditions"].startswith("Condition?patient={{context.patientId}}")
        assert all("{{context.patientId}}" in q for q in prefetch.values())
    assert hooks["patient-view"]["prefetch"]["medications"].startswith("MedicationRequest?")


# ---- calls --------------------------------------------------------------------------------------------
def test_order_select_decides_from_labs_with_the_row_verbatim(client: Any, seed_text: str) -> None:
    r = call(client, "faqbot-order-select", fixture("order-select-request"))
    assert r.status_code == 200, r.text
    body = r.json()
    valid(body, "response")
    decision, monitoring = body["cards"]
    assert decision["indicator"] == "warning"  # withhold, not a permanent discontinuation
    assert len(decision["summary"]) <= SUMMARY_MAX
    assert decision["summary"].startswith("Rhabdomyolysis: Withhold until resolved to Grade ≤ 1")
    d = decision["extension"]["org.faqbot.dose"]["decisions"][0]
    assert seed_text[d["start"] : d["end"]] == d["quote"]
    assert f"> {md_escape(d['quote'])}" in decision["detail"]
    assert f"> {d['quote']}" in md_unescape(decision["detail"])  # renders as the row, verbatim
    assert f"characters {d['start']}–{d['end']}" in decision["detail"]
    assert "CPK 12× ULN" in decision["detail"] and "Serum creatinine 1.73× baseline" in decision["detail"]
    assert "Research Use Only" in decision["detail"]
    sha = hashlib.sha256((ROOT / SOURCE).read_bytes()).hexdigest()
    label = decision["source"]["label"]
    assert "Official Discontinuation & Dose Modification Criteria" in label and sha in label
    assert decision["links"] == [
        {
            "label": "Show this row in faqbot's source view",
            "url": f"http://testserver/#p-{row_chunk_id(d['start'])}",
            "type": "absolute",
        }
    ]
    assert monitoring["indicator"] == "info"
    text = md_unescape(monitoring["detail"])
    assert "every three cycles thereafter" in text and "on Day 15 of the first four cycles" in text


def test_card_decision_equals_faqbot_decide_for_the_same_facts(client: Any, root: Path) -> None:
    from bot.cli import main

    card = call(client, "faqbot-order-select", fixture("order-select-request")).json()["cards"][0]
    ext = card["extension"]["org.faqbot.dose"]
    facts = ext["facts"]
    out = io.StringIO()
    args = ["decide", "--reaction", facts["reaction"], "--json", "--corpus-dir", str(root / "corpus")]
    args += ["--cpk-uln", repr(facts["cpk_uln"]), "--creatinine-baseline", repr(facts["creatinine_baseline"])]
    assert main(args, out=out) == 0
    cli = json.loads(out.getvalue())
    assert cli["route"] == ext["route"] == "decision"
    assert cli["decisions"] == ext["decisions"]
    assert cli["facts"] == facts


def test_patient_view_with_acute_kidney_injury_decides_the_aki_row(client: Any) -> None:
    r = call(client, "faqbot-patient-view", fixture("patient-view-request"))
    body = r.json()
    valid(body, "response")
    [card] = body["cards"]  # no monitoring card outside an order
    assert card["indicator"] == "warning"
    assert "Any grade with acute kidney injury" in md_unescape(card["detail"])
    detail = md_unescape(card["detail"])
    assert "Acute kidney injury: active condition Condition/aki-1" in detail
    assert "CPK 2.1× ULN" in detail


def test_null_prefetch_keys_say_what_is_missing(client: Any) -> None:
    r = call(client, "faqbot-order-sign", fixture("order-sign-request"))
    body = r.json()
    valid(body, "response")
    needs, monitoring = body["cards"]
    assert needs["indicator"] == "info" and monitoring["indicator"] == "info"
    assert needs["summary"] == (
        "Rhabdomyolysis rows not decided; needed: whether there is acute kidney injury"
    )
    detail = md_unescape(needs["detail"])
    assert "Creatine kinase (LOINC 2157-6): no result" in detail
    assert "Acute kidney injury: no conditions were given" in detail
    assert "CPK $>10x$ ULN with concurrent serum creatinine" in detail  # the rows, verbatim
    assert needs["extension"]["org.faqbot.dose"]["decisions"] == []


def test_wrong_units_are_not_converted_and_no_decision_is_made(client: Any) -> None:
    body = fixture("order-select-request")
    q = body["prefetch"]["creatinineBaseline"]["entry"][0]["resource"]["valueQuantity"]
    q.update({"value": 97, "unit": "umol/L", "code": "umol/L"})
    cards = call(client, "faqbot-order-select", body).json()["cards"]
    valid({"cards": cards}, "response")
    assert [c["indicator"] for c in cards] == ["info", "info"]
    assert "does not convert units" in md_unescape(cards[0]["detail"])


def test_absent_prefetch_is_412_even_with_a_fhir_server(client: Any) -> None:
    body = fixture("order-select-request")
    assert "fhirServer" in body
    del body["prefetch"]
    r = call(client, "faqbot-order-select", body)
    assert r.status_code == 412
    assert "does not query FHIR servers" in r.json()["error"]["message"]
    body = fixture("order-select-request")
    del body["prefetch"]["creatinineBaseline"]
    r = call(client, "faqbot-order-select", body)
    assert r.status_code == 412 and "creatinineBaseline" in r.json()["error"]["message"]


def test_orders_not_for_the_regimen_get_no_cards(client: Any) -> None:
    body = fixture("order-select-request")
    body["context"]["selections"] = ["NutritionOrder/pureeddiet-simple"]
    del body["prefetch"]  # nothing to say, so nothing is needed
    r = call(client, "faqbot-order-select", body)
    assert r.status_code == 200 and r.json() == {"cards": []}
    body = fixture("patient-view-request")
    body["prefetch"]["medications"] = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    assert call(client, "faqbot-patient-view", body).json() == {"cards": []}


@pytest.mark.parametrize(
    ("service", "mutate", "status"),
    [
        ("faqbot-order-select", lambda b: b.update(hook="encounter-start"), 400),
        ("faqbot-order-select", lambda b: b.pop("hookInstance"), 400),
        ("faqbot-order-select", lambda b: b["context"].pop("draftOrders"), 400),
        ("faqbot-order-select", lambda b: b["context"].pop("selections"), 400),
        ("faqbot-patient-view", lambda b: b["context"].pop("patientId"), 400),
        ("faqbot-order-select", lambda b: b["prefetch"].update(ck=[1]), 400),
        ("no-such-service", lambda b: None, 404),
    ],
)
def test_bad_requests_are_named(client: Any, service: str, mutate: Any, status: int) -> None:
    name = "patient-view-request" if "patient" in service else "order-select-request"
    body = fixture(name)
    mutate(body)
    r = call(client, service, body)
    assert r.status_code == status
    assert r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("service", "mutate", "named"),
    [
        ("faqbot-order-select", lambda b: b["context"].pop("userId"), "userId"),
        ("faqbot-order-select", lambda b: b["context"].update(selections=[]), "context.selections"),
        ("faqbot-patient-view", lambda b: b["context"].update(patientId=7), "context.patientId"),
        ("faqbot-order-sign", lambda b: b["fhirAuthorization"].update(expires_in="soon"), "expires_in"),
        ("faqbot-order-sign", lambda b: b["prefetch"].update(ck={"id": "x"}), "prefetch.ck"),
    ],
)
def test_requests_are_validated_against_the_spec_schema(
    client: Any, service: str, mutate: Any, named: str
) -> None:
    body = fixture({"faqbot-patient-view": "patient-view-request"}.get(service, "order-select-request"))
    if service == "faqbot-order-sign":
        body = fixture("order-sign-request")
        body["fhirAuthorization"] = copy.deepcopy(fixture("order-select-request")["fhirAuthorization"])
    mutate(body)
    r = call(client, service, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request" and named in r.json()["error"]["message"]


def test_openapi_documents_the_cds_routes_with_the_spec_schemas(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    discovery = paths["/cds-services"]["get"]["responses"]
    assert discovery["200"]["content"]["application/json"]["schema"] == inline(schema("discovery"))
    services = client.get("/cds-services").json()["services"]
    for sv in services:
        op = paths[f"/cds-services/{sv['id']}"]["post"]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        assert body == inline(request_schema(sv["hook"], tuple(sv["prefetch"])))
        assert set(body["properties"]["prefetch"]["properties"]) == set(sv["prefetch"])
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == inline(schema("response"))
        assert {"400", "401", "412", "413", "503"} <= set(op["responses"])
        error = op["responses"]["412"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorBody"}
        fb = paths[f"/cds-services/{sv['id']}/feedback"]["post"]
        assert fb["requestBody"]["content"]["application/json"]["schema"] == inline(schema("feedback"))
        assert "412" not in fb["responses"]
    assert "/cds-services/{service_id}" not in paths  # unknown ids: 404, not an operation
    cds_ops = json.dumps({p: ops for p, ops in paths.items() if p.startswith("/cds-services")})
    assert '"$defs"' not in cds_ops and '"$id"' not in cds_ops and '"$ref": "#/$defs' not in cds_ops
    # a documented request is accepted, the real response matches the documented one
    r = call(client, services[0]["id"], fixture("order-select-request"))
    jsonschema.Draft202012Validator(
        paths[f"/cds-services/{services[0]['id']}"]["post"]["responses"]["200"]["content"][
            "application/json"
        ]["schema"]
    ).validate(r.json())


def test_other_methods_are_405_naming_the_allowed_one(client: Any) -> None:
    for method, path, allow in [
        ("PUT", "/cds-services", "GET"),
        ("GET", "/cds-services/faqbot-order-select", "POST"),
        ("TRACE", "/cds-services/faqbot-patient-view/feedback", "POST"),
        ("DELETE", "/cds-services/no-such-service", "POST"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 405 and r.headers["allow"] == allow, (method, path)
        assert r.json()["error"]["code"] == "method_not_allowed"


def test_malformed_json_is_400(client: Any) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    r = client.post("/cds-services/faqbot-order-select", content=deep[:60_000])
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = client.post(
        "/cds-services/faqbot-order-select", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


def test_a_permanent_discontinuation_card_is_critical(root: Path) -> None:
    from bot.cds_hooks import CdsHooks
    from bot.dose import Facts
    from bot.fhir import LabReading

    settings = Settings(root=root)
    bot = Bot(settings)
    cds = CdsHooks(bot)
    answer = bot.decide(Facts(reaction="ocular", grade=4))
    reading = LabReading(Facts(reaction="ocular", grade=4), ("grade 4",), (), ())
    [card] = cds.decision_cards(answer, reading, [("MedicationRequest/1", "avutometinib")], "https://x.org")
    assert card["indicator"] == "critical"
    assert card["summary"] == "Ocular Toxicity: Permanently discontinue."
    valid({"cards": [card]}, "response")


# ---- feedback -----------------------------------------------------------------------------------------
def test_feedback_examples_are_recorded_in_the_feedback_log(root: Path) -> None:
    # audit off: feedback goes to the JSONL log (with audit on it goes to the audit store: next test)
    client = make_client(root, feedback_path=root / "cds-feedback.jsonl", audit=False)
    card = call(client, "faqbot-order-select", fixture("order-select-request")).json()["cards"][0]
    overridden = fixture("feedback-overridden")
    overridden["feedback"][0]["card"] = card["uuid"]
    r = client.post("/cds-services/faqbot-order-select/feedback", json=overridden)
    assert r.status_code == 200 and r.json() == {"recorded": 1}
    r = client.post("/cds-services/faqbot-order-select/feedback", json=fixture("feedback-accepted"))
    assert r.status_code == 200
    from bot.feedback import FeedbackLog

    first, second = FeedbackLog(root / "cds-feedback.jsonl").read()
    assert first["rating"] == "down" and first["route"] == "cds-hooks:overridden"
    assert "A comment entered by the clinician." in first["comment"] and "d7ecf885" in first["comment"]
    assert first["citations"] == [card["links"][0]["url"].rsplit("#p-", 1)[1]]  # the card's row
    assert card["uuid"] in first["question"]
    assert second["rating"] == "up" and "e56e1945-20b3-4393-8503-a1a20fd73152" in second["comment"]


@pytest.mark.parametrize(
    "body",
    [
        {"feedback": []},
        {"feedback": [{"card": "x", "outcome": "maybe", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]},
        {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "soon"}]},
        {"feedback": [{"outcome": "accepted", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]},
        {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]},
        {"feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "2020-12-11"}]},
        {
            "feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]
            * 101
        },
        {"cards": []},
    ],
)
def test_bad_feedback_is_refused(client: Any, body: dict[str, Any]) -> None:
    r = client.post("/cds-services/faqbot-order-select/feedback", json=body)
    assert r.status_code == 400 and r.json()["error"]["message"]


# ---- auth ---------------------------------------------------------------------------------------------
def test_server_auth_covers_cds_hooks(root: Path) -> None:
    client = make_client(root, auth_users="ehr:s3cret")
    assert client.get("/cds-services").status_code == 401
    assert call(client, "faqbot-order-select", fixture("order-select-request")).status_code == 401
    assert client.get("/cds-services", auth=("ehr", "s3cret")).status_code == 200


@pytest.fixture(scope="module")
def ehr_keys(root: Path) -> dict[str, Any]:
    """An EHR's ES384 key pair (as in the spec's example), its JWK Set and PEM public key in files."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": "example-kid", "use": "sig", "alg": "ES384"})
    (root / "ehr.jwks.json").write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (root / "ehr.pem").write_bytes(pem)
    return {"private": private}


def token(keys: dict[str, Any], aud: str, **claims: Any) -> str:
    import jwt

    now = int(time.time())
    payload = {"iss": "https://fhir-ehr.example.com/", "aud": aud, "exp": now + 300, "iat": now}
    payload.update({"jti": str(uuid.uuid4()), "tenant": "2ddd6c3a", **claims})
    alg = claims.pop("_alg", "ES384")
    key = claims.pop("_key", keys["private"])
    payload.pop("_alg", None)
    payload.pop("_key", None)
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": "example-kid", "typ": "JWT"})


def test_jwt_bearer_from_a_jwks_file(root: Path, ehr_keys: dict[str, Any]) -> None:
    client = make_client(
        root,
        cds_jwt_jwks="ehr.jwks.json",
        cds_jwt_issuers="https://fhir-ehr.example.com/",
        auth_users="alice:pw",  # the UI/API keep basic auth; CDS Hooks is authenticated by its JWT
    )
    url = "http://testserver/cds-services/faqbot-order-select"
    body = fixture("order-select-request")

    def post(tok: str) -> Any:
        return call(client, "faqbot-order-select", body, headers={"Authorization": f"Bearer {tok}"})

    good = token(ehr_keys, url)
    assert post(good).status_code == 200
    assert post(good).status_code == 401  # the same jti again: a replay
    assert post(token(ehr_keys, "http://testserver/cds-services/other")).status_code == 401
    assert post(token(ehr_keys, url, iss="https://evil.example/")).status_code == 401
    assert post(token(ehr_keys, url, exp=int(time.time()) - 3600)).status_code == 401
    hs = token(ehr_keys, url, _alg="HS256", _key="shared-secret-shared-secret-shared-secret")
    r = post(hs)
    assert r.status_code == 401 and "HS256" in r.json()["error"]["message"]
    assert call(client, "faqbot-order-select", body).status_code == 401  # no token
    assert call(client, "faqbot-order-select", body, auth=("alice", "pw")).status_code == 401
    assert client.get("/api/notice").status_code == 401  # the rest keeps the server's auth
    assert client.get("/cds-servicesx/config").status_code == 401  # only the CDS routes are delegated
    disc = client.get(
        "/cds-services",
        headers={"Authorization": f"Bearer {token(ehr_keys, 'http://testserver/cds-services')}"},
    )
    assert disc.status_code == 200


def test_jwt_from_a_pem_key_and_bad_key_settings(root: Path, ehr_keys: dict[str, Any]) -> None:
    from bot.errors import SettingsError

    client = make_client(
        root, cds_jwt_public_key="ehr.pem", cds_public_url="https://ehr-facing.example.org/dosing"
    )
    url = "https://ehr-facing.example.org/dosing/cds-services/faqbot-patient-view"
    r = call(
        client,
        "faqbot-patient-view",
        fixture("patient-view-request"),
        headers={"Authorization": f"Bearer {token(ehr_keys, url)}"},
    )
    assert r.status_code == 200
    link = r.json()["cards"][0]["links"][0]["url"]
    assert link.startswith("https://ehr-facing.example.org/dosing/#p-")
    with pytest.raises(SettingsError, match="only asymmetric"):
        make_client(root, cds_jwt_public_key="ehr.pem", cds_jwt_algorithms="HS256")
    with pytest.raises(SettingsError, match="not a PEM public key"):
        make_client(root, cds_jwt_public_key="ehr.jwks.json")


def test_detail_markdown_renders_document_text_verbatim() -> None:
    for text in ("Rhabdomyolysis\tCPK $>10x$ ULN $\\geq 1.5x$", "- **Ophthalmic Exams:** [1] <b>&", "1. x"):
        assert md_unescape(md_escape(text)) == text
        assert "<b>" not in md_escape(text)


def test_many_cards_are_remembered_within_a_bound(root: Path) -> None:
    from bot import cds_hooks

    cds = cds_hooks.CdsHooks(Bot(Settings(root=root)))
    body = copy.deepcopy(fixture("order-select-request"))
    for _ in range(3):
        cds.call("faqbot-order-select", body, "http://x")
    assert len(cds._cards) == 6 <= cds_hooks.MAX_REMEMBERED_CARDS


def test_served_under_the_root_path(root: Path) -> None:
    from fastapi.testclient import TestClient

    settings = Settings(root=root, root_path="/dosing")
    client = TestClient(create_app(Bot(settings), settings), root_path="/dosing")
    assert client.get("/dosing/cds-services").status_code == 200
    r = call(client, "faqbot-order-select", fixture("order-select-request"))
    assert r.json()["cards"][0]["links"][0]["url"].startswith("http://testserver/dosing/#p-")


@pytest.mark.parametrize("module", ["cds_hooks", "cds_auth", "fhir", "mcp_server"])
def test_new_faces_import_no_other_face(module: str) -> None:
    import ast

    tree = ast.parse((ROOT / "bot" / f"{module}.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    faces = {"bot.server", "bot.ui", "bot.cli", "bot.mcp_server", "bot.cds_hooks"} - {f"bot.{module}"}
    assert not imported & faces


def test_feedback_goes_to_the_audit_store_when_auditing(tmp_path: Path) -> None:
    """Issue 13 x 12: with the audit store on (the default), CDS feedback lands in the same store as the
    thumbs feedback, linked to the hook instance."""
    import shutil

    from fastapi.testclient import TestClient

    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    settings = Settings(root=tmp_path)
    bot = Bot(settings)
    client = TestClient(create_app(bot, settings), raise_server_exceptions=False)
    r = client.post("/cds-services/faqbot-order-select/feedback", json=fixture("feedback-accepted"))
    assert r.status_code == 200 and r.json() == {"recorded": 1}
    saved = list(bot.auditor.feedback())
    assert len(saved) == 1 and saved[0]["rating"] == "up"
    assert not (tmp_path / settings.feedback_path).exists()
