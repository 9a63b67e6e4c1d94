//! Shared helpers live in each test file; this crate only hosts the integration and UI tests.
