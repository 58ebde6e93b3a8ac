"""The store (database + content-addressed blobs), releases, exports and governance."""
