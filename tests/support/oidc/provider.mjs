// A real OpenID provider (panva's OpenID-certified oidc-provider) for the external-issuer
// tests: HTTPS on loopback, client_credentials with resource indicators, RFC 9068 JWT
// access tokens. Configuration comes from one JSON file named on the command line:
// {port, issuer, cert, key, jwks: {keys: [...]}, audience, scope, clients: [...], roles: {}}
import fs from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: config.scope,
        audience: config.audience,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: config.alg || 'ES256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => ({ roles: config.roles[token.clientId] || [] }),
});

const server = https.createServer(
  { cert: fs.readFileSync(config.cert), key: fs.readFileSync(config.key) },
  provider.callback(),
);
server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${config.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
