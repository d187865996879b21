"""The libraries pages: users build, share and ask their own sets of files (connectors.libraries)."""
