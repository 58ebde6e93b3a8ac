"""The ground floor: settings, the database and its migrations, blobs, accounts, the audit-log writer, the turn types."""
