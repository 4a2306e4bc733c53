"""The deletion-audit agent: runs on a company's hosts, scans, deletes and attests."""

__version__ = "0.1.0"
