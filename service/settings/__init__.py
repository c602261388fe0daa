"""The parts `config.Settings` is parsed with: rate-limit text, network lists, secret URLs,
the development certificate check and the trusted-issuers file. Import-light on
purpose: no models, no store."""
