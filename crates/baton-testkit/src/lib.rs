//! Test support: scripted model server (Responses and Messages SSE) and installer for the pinned real agent CLIs.
