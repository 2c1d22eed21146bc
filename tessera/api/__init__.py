"""Transports: REST (Starlette) and gRPC translate the wire to requests for the layers below
and render their answers in Qdrant's shapes. Owns routes, wire parsing and Qdrant's error
wording. May import storage/, collection/ and everything below; nothing below imports it."""
