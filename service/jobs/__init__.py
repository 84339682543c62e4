"""Fine-tuning as a service: the OpenAI Files + fine-tuning jobs API's store, job creation, worker processes
and serving what jobs produce. ``store`` (SQL, durable), ``objects`` (wire shapes), ``submit`` (checks, then
queue), ``worker`` + ``run`` (training in worker processes), ``service`` (the API side)."""
