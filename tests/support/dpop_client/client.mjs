// panva's oauth4webapi, used exactly as its documentation shows, against Portcullis:
// discovery, a password grant and a client-credentials grant with DPoP, resource calls
// with fresh proofs, a refresh, the nonce retry (isDPoPNonceError), and a thief's key.
// Prints one JSON object of what it saw; exits 1 on any unexpected error.
import * as oauth from 'oauth4webapi'

// Secrets come in the environment, never in the (world-readable) command line.
const [issuerUrl, username, clientId] = process.argv.slice(2)
const { USER_PASSWORD: password, CLIENT_SECRET: clientSecret } = process.env
const issuer = new URL(issuerUrl)
const seen = { nonce_retries: 0 }

// RFC 9449 §8/§9: on use_dpop_nonce the handle has cached the server's nonce; retry once.
async function withNonceRetry(call) {
  try {
    return await call()
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    seen.nonce_retries += 1
    return await call()
  }
}

async function getJson(accessToken, path, dpop) {
  return withNonceRetry(async () => {
    const response = await oauth.protectedResourceRequest(
      accessToken, 'GET', new URL(path, issuer), new Headers(), null, { DPoP: dpop })
    if (response.status !== 200) throw new Error(`${path}: HTTP ${response.status}`)
    return response.json()
  })
}

const as = await oauth.processDiscoveryResponse(
  issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2' }))
seen.dpop_algs = as.dpop_signing_alg_values_supported

// The first-party public client: password grant, then refresh.
const app = { client_id: 'portcullis' }
const appKey = await oauth.generateKeyPair(process.env.DPOP_ALG || 'ES256')
const appDpop = oauth.DPoP(app, appKey)
const login = await withNonceRetry(async () => oauth.processGenericTokenEndpointResponse(
  as, app, await oauth.genericTokenEndpointRequest(
    as, app, oauth.None(), 'password', new URLSearchParams({ username, password }),
    { DPoP: appDpop })))
seen.password_token_type = login.token_type
seen.me = await getJson(login.access_token, '/v1/users/me', appDpop)
seen.me_again = await getJson(login.access_token, '/v1/users/me', appDpop)

const refreshed = await withNonceRetry(async () => oauth.processRefreshTokenResponse(
  as, app, await oauth.refreshTokenGrantRequest(
    as, app, oauth.None(), login.refresh_token, { DPoP: appDpop })))
seen.refresh_token_type = refreshed.token_type
seen.refreshed_me = await getJson(refreshed.access_token, '/v1/users/me', appDpop)

// A thief holding the access token but not the key: the challenge names DPoP.
const thiefDpop = oauth.DPoP(app, await oauth.generateKeyPair('ES256'))
try {
  await getJson(refreshed.access_token, '/v1/users/me', thiefDpop)
  seen.thief = 'accepted'
} catch (err) {
  seen.thief = err instanceof oauth.WWWAuthenticateChallengeError
    ? err.cause.map((c) => `${c.scheme}:${c.parameters.error ?? ''}`).join(' ')
    : String(err)
}

// A confidential client: client credentials with DPoP.
const robot = { client_id: clientId }
const robotDpop = oauth.DPoP(robot, await oauth.generateKeyPair('ES256'))
const cc = await withNonceRetry(async () => oauth.processClientCredentialsResponse(
  as, robot, await oauth.clientCredentialsGrantRequest(
    as, robot, oauth.ClientSecretPost(clientSecret), new URLSearchParams({ scope: 'notes:read' }),
    { DPoP: robotDpop })))
seen.client_token_type = cc.token_type
seen.notes = await getJson(cc.access_token, '/v1/notes', robotDpop)

process.stdout.write(JSON.stringify(seen) + '\n')
