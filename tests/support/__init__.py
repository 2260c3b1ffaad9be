"""What tests in every folder share: the session's exports, repository assembly, the server
process, and the Hugging Face references. Imported by the conftests and the tests themselves."""
