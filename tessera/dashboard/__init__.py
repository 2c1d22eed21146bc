"""The web dashboard's static files (HTML, CSS, JavaScript modules), served at `/dashboard`
by `tessera.api.dashboard`; no build step, nothing fetched from elsewhere. Also Qdrant's
OpenAPI schema (Apache-2.0), from which `/openapi.json` describes the routes served."""
