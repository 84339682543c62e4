"""The adapter lifecycle: named adapters with versions and one promoted version per name (``registry``),
the eval gate on fine-tuning jobs (``gate``), staleness against a live knowledge base (``staleness``) and
scheduled retraining as ordinary jobs (``schedules``), all in the jobs store's database."""
