"""The table of contents: which collections exist on disk, created and dropped atomically
and durably, and the offline checker (`tessera check`). May import collection/ and below."""
