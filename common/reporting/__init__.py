"""What is read off trained models and results: statistics for tables and figures (`scores`), off-policy
evaluation (`ope`), policy export (`export`) and loading trained models (`trained`)."""
