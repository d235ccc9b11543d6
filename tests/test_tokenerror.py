"""Classifying a failed refresh from google-auth's exception and the HTTP status."""

import pytest
from google.auth import exceptions

from orchestrator import tokenerror


def refresh_error(body: object, retryable: bool = False) -> exceptions.RefreshError:
    # The shapes google.oauth2._client._handle_error_response raises.
    if isinstance(body, str):
        return exceptions.RefreshError(body, retryable=retryable)
    return exceptions.RefreshError("details", body, retryable=retryable)


def test_expired_refresh_token_is_a_non_retryable_invalid_grant() -> None:
    body = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    error = tokenerror.classify(refresh_error(body), 400, "google")
    assert error == tokenerror.TokenError(
        "google", "400", "invalid_grant", "Token has been expired or revoked.", False
    )
    assert (
        error.message("port-sheet")
        == "[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked."
    )


def test_server_error_keeps_google_auths_retryable_verdict() -> None:
    body = {"error": "internal_failure", "error_description": "Backend Error"}
    error = tokenerror.classify(refresh_error(body, retryable=True), 500, "google")
    assert (error.status_code, error.oauth_error, error.retryable) == ("500", "internal_failure", True)


def test_html_error_page_is_unknown_and_described_by_its_title() -> None:
    page = "<html><head><title>Error 502 (Server Error)!!1</title></head><body>x</body></html>"
    error = tokenerror.classify(refresh_error(page), 502, "google")
    assert error.oauth_error == "unknown"
    assert error.description == "HTML page: Error 502 (Server Error)!!1"
    assert error.retryable is False


def test_network_error_has_no_status_and_is_retryable() -> None:
    exc = exceptions.TransportError("HTTPConnectionPool(host='127.0.0.1', port=1): Read timed out.")
    error = tokenerror.classify(exc, None, "google")
    assert (error.status_code, error.oauth_error, error.retryable) == ("none", "none", True)
    assert error.message("port-sheet") == (
        "[port-sheet] token error: no HTTP answer:"
        " HTTPConnectionPool(host='127.0.0.1', port=1): Read timed out."
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"error": "invalid_client", "error_description": "Unauthorized"},
            ("invalid_client", "Unauthorized"),
        ),
        ({"error": "invalid_scope"}, ("invalid_scope", "")),
        ({"error": "made_up_code", "error_description": "x"}, ("other", "made_up_code: x")),
        ({"foo": 1}, ("unknown", "response is JSON but not an OAuth error")),
        ("", ("unknown", "empty response body")),
        ("plain text\nsecond line", ("unknown", "not OAuth JSON: plain text second line")),
        ("<p>oops</p>", ("unknown", "HTML page without a title")),
    ],
)
def test_parse_body(body: object, expected: tuple[str, str]) -> None:
    assert tokenerror.parse_body(body) == expected


def test_long_descriptions_are_cut_to_one_bounded_line() -> None:
    oauth_error, description = tokenerror.parse_body(
        {"error": "invalid_grant", "error_description": "x" * 500}
    )
    assert oauth_error == "invalid_grant"
    assert len(description) == 200 and description.endswith("...")


def test_round_trip_through_the_job_result_json() -> None:
    error = tokenerror.TokenError("google", "401", "invalid_client", "Unauthorized", False)
    assert tokenerror.TokenError.from_dict(error.as_dict()) == error
