"""FHIR prefetch → the dose engine's facts (bot/fhir.py): labs become multiples only when usable; what is
missing or unusable is named, never guessed. Pure: no model, no server."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import fhir

DATA = Path(__file__).parent / "data" / "cds_hooks"


@pytest.fixture(scope="module")
def codes() -> fhir.Codes:
    return fhir.load_codes()


def request(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}-request.json").read_text(encoding="utf-8"))


def first(bundle: dict[str, Any]) -> dict[str, Any]:
    return bundle["entry"][0]["resource"]


def test_the_code_file_names_the_verified_loinc_codes_and_its_sources() -> None:
    text = (Path(fhir.__file__).parent / "data" / "cds_hooks.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    loinc = {k: (v["code"], v["display"]) for k, v in data["loinc"].items() if isinstance(v, dict)}
    assert loinc == {
        "ck": ("2157-6", "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma"),
        "creatinine": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
        "alt": ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma"),
        "ast": ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma"),
        "bilirubin": ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma"),
    }
    for code in ("2157-6", "2160-0", "1742-6", "1920-8", "1975-2"):  # each code's source is named
        assert text.count(code) >= 2, code
    assert "hl7.org/fhir/uv/cpg/ValueSet-ckd-valueset-creatinine" in text
    assert "observationdefinition-example-ck-panel" in text


def test_labs_become_multiples_with_the_values_used(codes: fhir.Codes) -> None:
    reading = fhir.read_labs(request("order-select")["prefetch"], codes)
    assert reading.facts.reaction == "rhabdomyolysis"
    assert reading.facts.cpk_uln == pytest.approx(4800 / 400)
    assert reading.facts.creatinine_baseline == pytest.approx(1.9 / 1.1)
    assert reading.facts.aki is None  # an empty problem list is not "no AKI"
    used = "\n".join(reading.used)
    assert "Observation/ck-2" in used and "400 U/L" in used
    assert "Observation/creat-2" in used and "Observation/creat-0" in used and "units mg/dL" in used
    assert any("no active condition of acute kidney injury" in m for m in reading.missing)
    assert any(n.startswith("ALT 1.51× ULN") for n in reading.notes)


def test_ck_reference_limit_in_other_units_is_not_used(codes: fhir.Codes) -> None:
    prefetch = request("order-select")["prefetch"]
    high = first(prefetch["ck"])["referenceRange"][0]["high"]
    high.update({"value": 6.7, "unit": "ukat/L", "code": "ukat/L"})
    reading = fhir.read_labs(prefetch, codes)
    assert reading.facts.cpk_uln is None
    assert any("units must agree" in m and "ukat/L" in m for m in reading.missing)


def test_creatinine_in_different_units_is_not_converted(codes: fhir.Codes) -> None:
    prefetch = request("order-select")["prefetch"]
    q = first(prefetch["creatinineBaseline"])["valueQuantity"]
    q.update({"value": 97, "unit": "umol/L", "code": "umol/L"})
    reading = fhir.read_labs(prefetch, codes)
    assert reading.facts.creatinine_baseline is None
    assert any("mg/dL" in m and "umol/L" in m and "does not convert" in m for m in reading.missing)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "preliminary"}, "not a final result"),
        ({"valueQuantity": {"value": 4800, "comparator": ">", "unit": "U/L", "code": "U/L"}}, "a bound"),
        ({"valueQuantity": {"value": "high", "unit": "U/L", "code": "U/L"}}, "no positive numeric value"),
        ({"referenceRange": []}, "no reference range upper limit"),
        ({"effectiveDateTime": "yesterday"}, "no usable date"),
    ],
)
def test_unusable_ck_values_are_named(codes: fhir.Codes, change: dict[str, Any], reason: str) -> None:
    prefetch = request("order-select")["prefetch"]
    first(prefetch["ck"]).update(change)
    reading = fhir.read_labs(prefetch, codes)
    assert reading.facts.cpk_uln is None
    assert any(reason in m and "Observation/ck-2" in m for m in reading.missing), reading.missing


def test_entered_in_error_results_are_skipped(codes: fhir.Codes) -> None:
    prefetch = request("order-select")["prefetch"]
    wrong = copy.deepcopy(first(prefetch["ck"]))
    wrong.update({"id": "ck-9", "status": "entered-in-error", "effectiveDateTime": "2026-11-21T08:00:00Z"})
    prefetch["ck"]["entry"].append({"resource": wrong})
    assert fhir.read_labs(prefetch, codes).facts.cpk_uln == pytest.approx(12)


def test_null_keys_and_a_single_creatinine_give_no_values(codes: fhir.Codes) -> None:
    prefetch = request("order-select")["prefetch"]
    prefetch["ck"] = None
    prefetch["creatinineBaseline"] = copy.deepcopy(prefetch["creatinine"])  # the same (only) result
    reading = fhir.read_labs(prefetch, codes)
    assert reading.facts.cpk_uln is None and reading.facts.creatinine_baseline is None
    assert any("Creatine kinase (LOINC 2157-6): no result" in m for m in reading.missing)
    assert any("no earlier value to serve as baseline" in m for m in reading.missing)


def test_active_aki_condition_sets_aki_and_a_refuted_one_does_not(codes: fhir.Codes) -> None:
    prefetch = request("patient-view")["prefetch"]
    assert fhir.read_labs(prefetch, codes).facts.aki is True
    cond = first(prefetch["conditions"])
    cond["verificationStatus"]["coding"][0]["code"] = "refuted"
    assert fhir.read_labs(prefetch, codes).facts.aki is None
    cond["verificationStatus"]["coding"][0]["code"] = "confirmed"
    cond["clinicalStatus"]["coding"][0]["code"] = "resolved"
    assert fhir.read_labs(prefetch, codes).facts.aki is None


def test_an_operation_outcome_is_reported(codes: fhir.Codes) -> None:
    prefetch = request("order-select")["prefetch"]
    prefetch["ck"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "lab system unavailable"}],
    }
    reading = fhir.read_labs(prefetch, codes)
    assert reading.facts.cpk_uln is None
    assert any("lab system unavailable" in n for n in reading.notes)


def test_prefetch_that_is_not_fhir_is_an_error(codes: fhir.Codes) -> None:
    with pytest.raises(fhir.FhirDataError, match="prefetch 'ck' must be a FHIR resource"):
        fhir.read_labs({"ck": [1, 2]}, codes)
    with pytest.raises(fhir.FhirDataError, match="is a 'Patient'"):
        fhir.read_labs({"ck": {"resourceType": "Patient"}}, codes)


def test_regimen_orders_match_by_name_or_configured_code() -> None:
    codes = fhir.load_codes(medication_codes="http://www.nlm.nih.gov/research/umls/rxnorm|999999")
    draft = request("order-select")["context"]["draftOrders"]
    assert fhir.regimen_orders(draft, codes, ["MedicationRequest/avutometinib-order-1"]) == [
        ("MedicationRequest/avutometinib-order-1", "Avutometinib 0.8 MG Oral Capsule")
    ]
    assert fhir.regimen_orders(draft, codes, ["NutritionOrder/pureeddiet-simple"]) == []
    med = draft["entry"][1]["resource"]["medicationCodeableConcept"]
    med.update({"text": "Avutometinibx 1 mg", "coding": [{"display": "Amoxicillin"}]})
    assert fhir.regimen_orders(draft, codes) == []
    med["coding"] = [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "999999"}]
    assert fhir.regimen_orders(draft, codes)[0][1] == "http://www.nlm.nih.gov/research/umls/rxnorm|999999"
    with pytest.raises(fhir.FhirDataError, match="system\\|code"):
        fhir.load_codes(medication_codes="999999")
