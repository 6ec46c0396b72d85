"""HTTP plumbing shared by every service that serves HTTP."""
