"""Follow-up reviews (回头看): plans, unannounced commitments, a review's life, its outcome."""
