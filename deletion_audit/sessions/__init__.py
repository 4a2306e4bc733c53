"""On-site verification sessions (现场勘验): opened by a prosecutor, scanned by the
examiner's agent, recorded by the server, co-signed by the participants."""
