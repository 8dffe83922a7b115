-- The Prefect server keeps its own database next to MetaExpert's trading state.
CREATE DATABASE prefect OWNER metaexpert;
