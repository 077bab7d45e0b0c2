//! Codex CLI rollouts: legacy (0.58) and paginated (0.169) formats.
