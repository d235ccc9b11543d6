"""The Google simulator, driven through the real libraries (google-auth, gspread, requests)."""

import json
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import gspread
import pytest
import requests
from google.auth import exceptions
from google.auth.transport.requests import Request
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from orchestrator import googleclient
from orchestrator.credentials import CredentialFile
from simulators.google import GoogleSimulator, generate_service_account_key


@pytest.fixture
def sim() -> Iterator[GoogleSimulator]:
    with GoogleSimulator() as simulator:
        yield simulator


def user_creds(info: dict[str, str]) -> user_credentials.Credentials:
    return googleclient.build(CredentialFile("google", Path("google.json"), "authorized_user", info))


def sheets_client(sim: GoogleSimulator) -> gspread.Client:
    info = sim.new_authorized_user()
    creds = user_creds(info)
    transport = googleclient.TokenTransport(timeout=5)
    assert googleclient.refresh(creds, transport, "google") is None
    return gspread.Client(auth=creds, session=googleclient.session(creds, transport, sim.url))


def test_refresh_token_grant_issues_an_access_token_until_revoked(sim: GoogleSimulator) -> None:
    info = sim.new_authorized_user()
    creds = user_creds(info)
    creds.refresh(Request())
    assert creds.token.startswith("ya29.sim-")
    sim.revoke(info["refresh_token"])
    with pytest.raises(exceptions.RefreshError) as excinfo:
        creds.refresh(Request())
    assert excinfo.value.args[1] == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


def test_wrong_client_secret_is_invalid_client(sim: GoogleSimulator) -> None:
    info = {**sim.new_authorized_user(), "client_secret": "wrong"}
    with pytest.raises(exceptions.RefreshError) as excinfo:
        user_creds(info).refresh(Request())
    assert excinfo.value.args[1]["error"] == "invalid_client"


def test_jwt_bearer_grant_checks_the_signature_against_the_registered_key(sim: GoogleSimulator) -> None:
    info = sim.new_service_account()
    creds = service_account.Credentials.from_service_account_info(info, scopes=["x"])
    creds.refresh(Request())
    assert creds.token.startswith("ya29.sim-")
    impostor, _ = generate_service_account_key(info["client_email"], sim.token_uri)
    with pytest.raises(exceptions.RefreshError, match="Invalid JWT Signature"):
        service_account.Credentials.from_service_account_info(impostor, scopes=["x"]).refresh(Request())


def test_clock_skew_scenario_rejects_the_jwt_as_google_does(sim: GoogleSimulator) -> None:
    info = sim.new_service_account()
    sim.set_scenario(token="clock_skew")
    with pytest.raises(exceptions.RefreshError) as excinfo:
        service_account.Credentials.from_service_account_info(info, scopes=["x"]).refresh(Request())
    assert excinfo.value.args[1]["error"] == "invalid_grant"
    assert excinfo.value.args[1]["error_description"].startswith("Invalid JWT: Token must be a short-lived")


def test_consent_page_redirects_back_with_a_code_that_exchanges_once(sim: GoogleSimulator) -> None:
    sim.add_client("cid", "csecret")
    redirect = "http://127.0.0.1:1/"
    answer = requests.get(
        sim.auth_uri,
        params={"client_id": "cid", "redirect_uri": redirect, "state": "s1", "response_type": "code"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302
    location = urllib.parse.urlsplit(answer.headers["Location"])
    query = dict(urllib.parse.parse_qsl(location.query))
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    assert query["state"] == "s1"
    form = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "client_id": "cid",
        "client_secret": "csecret",
        "redirect_uri": redirect,
    }
    token = requests.post(sim.token_uri, data=form, timeout=5)
    assert token.status_code == 200 and token.json()["refresh_token"].startswith("1//sim-")
    again = requests.post(sim.token_uri, data=form, timeout=5)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_sheets_api_through_gspread_keeps_what_was_written(sim: GoogleSimulator) -> None:
    sim.add_spreadsheet("S1", worksheets=("ports", "other"))
    spreadsheet = sheets_client(sim).open_by_key("S1")
    assert [ws.title for ws in spreadsheet.worksheets()] == ["ports", "other"]
    spreadsheet.values_batch_update(
        {"valueInputOption": "RAW", "data": [{"range": "'ports'!A1", "values": [["a", "b"], ["c"]]}]}
    )
    spreadsheet.worksheet("other").update([["x"]], "B2")
    assert sim.values("S1", "ports") == [["a", "b"], ["c"]]
    assert spreadsheet.worksheet("other").get_values() == [["", ""], ["", "x"]]
    spreadsheet.values_clear("'ports'")
    assert sim.values("S1", "ports") == []


@pytest.mark.parametrize(
    ("scenario", "status", "reason"),
    [("429", 429, "RESOURCE_EXHAUSTED"), ("403", 403, "PERMISSION_DENIED"), ("404", 404, "NOT_FOUND")],
)
def test_sheets_error_scenarios_answer_in_googles_error_format(
    sim: GoogleSimulator, scenario: str, status: int, reason: str
) -> None:
    sim.add_spreadsheet("S1")
    client = sheets_client(sim)
    sim.set_scenario(sheets=scenario, times=1)
    with pytest.raises(gspread.exceptions.APIError) as excinfo:
        client.http_client.fetch_sheet_metadata("S1")
    assert (excinfo.value.code, excinfo.value.error["status"]) == (status, reason)
    assert client.open_by_key("S1").title == "Ports"  # the scenario applied to one request only


def test_unknown_spreadsheet_is_404_and_unknown_token_is_401(sim: GoogleSimulator) -> None:
    client = sheets_client(sim)
    with pytest.raises(gspread.exceptions.SpreadsheetNotFound):
        client.open_by_key("nope")
    answer = requests.get(f"{sim.url}/v4/spreadsheets/nope", headers={"Authorization": "Bearer x"}, timeout=5)
    assert answer.status_code == 401


def test_scenarios_are_settable_over_http(sim: GoogleSimulator) -> None:
    info = sim.new_authorized_user()
    answer = requests.post(f"{sim.url}/_sim/scenario", json={"token": "invalid_client"}, timeout=5)
    assert answer.json() == {"token": "invalid_client", "sheets": "ok"}
    with pytest.raises(exceptions.RefreshError, match="invalid_client"):
        user_creds(info).refresh(Request())
    requests.post(f"{sim.url}/_sim/scenario", json={"token": "ok"}, timeout=5)
    user_creds(info).refresh(Request())


def test_runs_as_a_program_and_prints_where_it_listens() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.google", "--client", "cid:csecret", "--spreadsheet", "S9:ports"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = requests.get(
                    urls["auth_uri"], params={"client_id": "cid"}, allow_redirects=False, timeout=1
                )
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "simulator did not start listening"
                time.sleep(0.05)
        assert answer.status_code == 302
        assert urls["token_uri"] == urls["url"] + "/token"
    finally:
        process.terminate()
        process.wait(timeout=10)
