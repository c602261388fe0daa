// A real OpenID provider (panva's OpenID-certified oidc-provider) for the external-issuer
// tests: HTTPS on loopback, client_credentials with resource indicators, RFC 9068 JWT
// access tokens. Configuration comes from one JSON file named on the command line:
// {port, issuer, cert, key, jwks: {keys: [...]}, resources: {"urn:x": "audience"}, scope,
//  clients: [...], roles: {"client id": ["role", ...]}}
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
      defaultResource: () => Object.keys(config.resources)[0],
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: config.scope,
        audience: config.resources[resource],
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
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
