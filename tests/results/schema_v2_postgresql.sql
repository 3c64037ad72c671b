-- results store schema version 2 (PostgreSQL), as cai-bench wrote it before generation_errors kept the input hash
CREATE TABLE checkpoints (
	fingerprint VARCHAR(64) NOT NULL, 
	spec TEXT NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	label TEXT NOT NULL, 
	metadata_json TEXT NOT NULL, 
	PRIMARY KEY (fingerprint)
);

CREATE TABLE gen_configs (
	gen_hash VARCHAR(64) NOT NULL, 
	config_json TEXT NOT NULL, 
	PRIMARY KEY (gen_hash)
);

CREATE TABLE generation_errors (
	error_id SERIAL NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	task_id VARCHAR(128) NOT NULL, 
	prompt_id VARCHAR(256) NOT NULL, 
	gen_hash VARCHAR(64) NOT NULL, 
	error TEXT NOT NULL, 
	run_id VARCHAR(64), 
	created_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (error_id), 
	CONSTRAINT uq_generation_error UNIQUE (fingerprint, task_id, prompt_id, gen_hash)
);

CREATE TABLE meta (
	key VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY (key)
);

CREATE TABLE runs (
	run_id VARCHAR(64) NOT NULL, 
	started_at VARCHAR(40) NOT NULL, 
	finished_at VARCHAR(40), 
	status VARCHAR(16) NOT NULL, 
	seed INTEGER, 
	config_json TEXT NOT NULL, 
	scorers_json TEXT NOT NULL, 
	cai_bench_version VARCHAR(32), 
	heartbeat_at VARCHAR(40), 
	pid INTEGER, 
	host VARCHAR(255), 
	sample_json TEXT, 
	PRIMARY KEY (run_id)
);

CREATE TABLE scorer_metrics (
	scorer_id VARCHAR(64) NOT NULL, 
	scorer_hash VARCHAR(64) NOT NULL, 
	metric VARCHAR(64) NOT NULL, 
	direction VARCHAR(8) NOT NULL, 
	lo FLOAT, 
	hi FLOAT, 
	config_json TEXT NOT NULL, 
	composite INTEGER, 
	role VARCHAR(32), 
	PRIMARY KEY (scorer_id, scorer_hash, metric)
);

CREATE TABLE tasks (
	task_id VARCHAR(128) NOT NULL, 
	constitution_id VARCHAR(128) NOT NULL, 
	culture TEXT NOT NULL, 
	n_prompts INTEGER NOT NULL, 
	metadata_json TEXT NOT NULL, 
	PRIMARY KEY (task_id)
);

CREATE TABLE generations (
	generation_id SERIAL NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	task_id VARCHAR(128) NOT NULL, 
	prompt_id VARCHAR(256) NOT NULL, 
	input_hash VARCHAR(64) NOT NULL, 
	gen_hash VARCHAR(64) NOT NULL, 
	response TEXT NOT NULL, 
	seconds FLOAT, 
	run_id VARCHAR(64), 
	created_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (generation_id), 
	CONSTRAINT uq_generation_v2 UNIQUE (fingerprint, task_id, prompt_id, input_hash, gen_hash), 
	FOREIGN KEY(fingerprint) REFERENCES checkpoints (fingerprint)
);

CREATE INDEX ix_generations_unit ON generations (fingerprint, task_id, gen_hash);

CREATE TABLE prompts (
	task_id VARCHAR(128) NOT NULL, 
	prompt_id VARCHAR(256) NOT NULL, 
	content_hash VARCHAR(64) NOT NULL, 
	input_hash VARCHAR(64) NOT NULL, 
	prompt TEXT NOT NULL, 
	principle_id VARCHAR(128), 
	reference TEXT, 
	category TEXT, 
	expect VARCHAR(16), 
	current INTEGER NOT NULL, 
	PRIMARY KEY (task_id, prompt_id, content_hash), 
	FOREIGN KEY(task_id) REFERENCES tasks (task_id)
);

CREATE TABLE run_checkpoints (
	run_id VARCHAR(64) NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	PRIMARY KEY (run_id, fingerprint), 
	FOREIGN KEY(run_id) REFERENCES runs (run_id), 
	FOREIGN KEY(fingerprint) REFERENCES checkpoints (fingerprint)
);

CREATE TABLE scores (
	score_id SERIAL NOT NULL, 
	generation_id INTEGER NOT NULL, 
	scorer_id VARCHAR(64) NOT NULL, 
	scorer_hash VARCHAR(64) NOT NULL, 
	content_hash VARCHAR(64) NOT NULL, 
	metric VARCHAR(64) NOT NULL, 
	value FLOAT, 
	status VARCHAR(16) NOT NULL, 
	error TEXT, 
	detail_json TEXT, 
	run_id VARCHAR(64), 
	created_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (score_id), 
	CONSTRAINT uq_score_v2 UNIQUE (generation_id, scorer_id, scorer_hash, content_hash, metric), 
	FOREIGN KEY(generation_id) REFERENCES generations (generation_id)
);

CREATE INDEX ix_scores_scorer ON scores (scorer_id, scorer_hash);
