"""Channel adapters: platform payloads in, rendered platform messages out."""
