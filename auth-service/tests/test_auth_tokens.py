"""Token endpoint, refresh rotation with reuse detection, revocation and introspection."""

from __future__ import annotations

import time

import httpx
import jwt

WEB = ("web", "dev-only-web-secret")
MOBILE = ("mobile", "dev-only-mobile-secret")


async def login(
    client: httpx.AsyncClient, user: str = "alice", *, auth: tuple[str, str] = WEB
) -> dict[str, str]:
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": user, "password": f"{user}-password"},
        auth=auth,
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, token: str, *, auth: tuple[str, str] = WEB) -> httpx.Response:
    return await client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token}, auth=auth
    )


async def introspect(client: httpx.AsyncClient, token: str, **extra: str) -> dict[str, object]:
    response = await client.post("/oauth/introspect", data={"token": token, **extra}, auth=WEB)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_password_grant_issues_rs256_token_with_all_claims(auth: httpx.AsyncClient) -> None:
    response = await auth.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "alice", "password": "alice-password"},
        auth=WEB,
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    header = jwt.get_unverified_header(body["access_token"])
    jwks = (await auth.get("/.well-known/jwks.json")).json()
    assert header["alg"] == "RS256"
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    key = jwt.PyJWK.from_dict(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = jwt.decode(body["access_token"], key.key, algorithms=["RS256"], audience="msa-platform")
    assert claims["iss"] == "http://auth-service:8000"
    assert claims["sub"] == "alice"
    assert claims["client_id"] == "web"
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 60
    assert claims["jti"]
    assert claims["sid"]
    assert "orders:write" in claims["scope"].split()
    assert "catalog:write" not in claims["scope"].split()
    assert body["refresh_token"]
    assert "." not in body["refresh_token"]


async def test_admin_gets_admin_scopes_and_requested_scope_narrows(auth: httpx.AsyncClient) -> None:
    admin = await login(auth, "admin")
    assert "catalog:write" in admin["scope"].split()
    response = await auth.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "admin",
            "password": "admin-password",
            "scope": "catalog:read",
        },
        auth=WEB,
    )
    assert response.json()["scope"] == "catalog:read"


async def test_client_authenticates_by_form_too_and_wrong_secret_is_refused(auth: httpx.AsyncClient) -> None:
    form = {"grant_type": "password", "username": "bob", "password": "bob-password"}
    ok = await auth.post("/oauth/token", data={**form, "client_id": "mobile", "client_secret": MOBILE[1]})
    assert ok.status_code == 200
    bad = await auth.post("/oauth/token", data=form, auth=("web", "not-the-secret"))
    assert bad.status_code == 401
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["error"] == "invalid_client"
    none = await auth.post("/oauth/token", data=form)
    assert none.status_code == 401


async def test_malformed_basic_client_credentials_are_oauth_invalid_client(auth: httpx.AsyncClient) -> None:
    # RFC 6749 5.2 answers: not the web framework's own "Not authenticated"
    form = {"grant_type": "password", "username": "bob", "password": "bob-password"}
    for value in ("Basic !!!not-base64", "Basic bm8tY29sb24=", "Basic w6k6w6k="):  # no ":"; UTF-8 "é:é"
        answer = await auth.post("/oauth/token", data=form, headers={"Authorization": value})
        assert answer.status_code == 401, (value, answer.text)
        assert answer.json()["error"] == "invalid_client", value


async def test_wrong_password_and_unknown_user_are_invalid_grant(auth: httpx.AsyncClient) -> None:
    for user, password in (("alice", "wrong"), ("mallory", "whatever")):
        response = await auth.post(
            "/oauth/token", data={"grant_type": "password", "username": user, "password": password}, auth=WEB
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
    unsupported = await auth.post("/oauth/token", data={"grant_type": "implicit"}, auth=WEB)
    assert unsupported.json()["error"] == "unsupported_grant_type"


async def test_refresh_rotates_and_reuse_revokes_the_whole_session(auth: httpx.AsyncClient) -> None:
    first = await login(auth)
    second_response = await refresh(auth, first["refresh_token"])
    assert second_response.status_code == 200
    second = second_response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await introspect(auth, second["access_token"]))["active"] is True

    reuse = await refresh(auth, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # every token of the session is dead now, the newest ones included
    assert (await introspect(auth, second["access_token"]))["active"] is False
    assert (await introspect(auth, first["access_token"]))["active"] is False
    assert (await refresh(auth, second["refresh_token"])).status_code == 400


async def test_refresh_token_is_bound_to_its_client(auth: httpx.AsyncClient) -> None:
    tokens = await login(auth, auth=WEB)
    assert (await refresh(auth, tokens["refresh_token"], auth=MOBILE)).status_code == 400
    assert (await refresh(auth, tokens["refresh_token"], auth=WEB)).status_code == 200


async def test_revoke_ends_the_session_now(auth: httpx.AsyncClient) -> None:
    tokens = await login(auth)
    other = await login(auth)  # another session of the same user stays alive
    response = await auth.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=WEB)
    assert response.status_code == 200
    assert (await introspect(auth, tokens["access_token"]))["active"] is False
    assert (await refresh(auth, tokens["refresh_token"])).status_code == 400
    assert (await introspect(auth, other["access_token"]))["active"] is True
    # revoking by access token works as well; unknown tokens are no error (RFC 7009)
    await auth.post("/oauth/revoke", data={"token": other["access_token"]}, auth=WEB)
    assert (await introspect(auth, other["access_token"]))["active"] is False
    assert (await auth.post("/oauth/revoke", data={"token": "unknown"}, auth=WEB)).status_code == 200


async def test_another_client_cannot_revoke_a_session(auth: httpx.AsyncClient) -> None:
    tokens = await login(auth, auth=WEB)
    await auth.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=MOBILE)
    assert (await introspect(auth, tokens["access_token"]))["active"] is True


async def test_introspection_answers_the_authorization_question(auth: httpx.AsyncClient) -> None:
    alice = await login(auth, "alice")
    answer = await introspect(auth, alice["access_token"], required_scope="catalog:write")
    assert answer["active"] is True
    assert answer["authorized"] is False
    assert answer["missing_scope"] == ["catalog:write"]
    assert answer["sub"] == "alice"
    assert answer["client_id"] == "web"
    assert answer["sid"]
    admin = await login(auth, "admin")
    assert (await introspect(auth, admin["access_token"], required_scope="catalog:write"))[
        "authorized"
    ] is True
    # introspection itself needs client credentials
    anonymous = await auth.post("/oauth/introspect", data={"token": admin["access_token"]})
    assert anonymous.status_code == 401


async def test_introspecting_a_refresh_token(auth: httpx.AsyncClient) -> None:
    tokens = await login(auth)
    answer = await introspect(auth, tokens["refresh_token"], token_type_hint="refresh_token")
    assert answer["active"] is True
    assert answer["token_type"] == "refresh_token"
    assert (await introspect(auth, "garbage"))["active"] is False


async def test_discovery_document(auth: httpx.AsyncClient) -> None:
    body = (await auth.get("/.well-known/openid-configuration")).json()
    assert body["issuer"] == "http://auth-service:8000"
    assert body["jwks_uri"].endswith("/.well-known/jwks.json")
    assert body["token_endpoint"].endswith("/oauth/token")
    assert body["id_token_signing_alg_values_supported"] == ["RS256"]
