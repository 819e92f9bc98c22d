"""One pretraining described by a ``PretrainSpec``: its data, its ``Pretrainer``, its run folder, and reloading it."""
