"""Test support: throwaway database servers and shared fixtures."""
