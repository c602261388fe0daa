"""Hypercorn, as this service runs it: `patches` (every change to Hypercorn's behaviour, one
`install()`), `tls` (the OpenSSL configuration the serving processes load) and `serve`
(`portcullis serve`)."""
