//! `hearth eval`: BEIR-format retrieval evaluation (placeholder replaced below).
