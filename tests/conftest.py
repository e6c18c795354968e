import policies

# The policy documents, read once for the whole run, as every process does at its start.
policies.install()

pytest_plugins = ["tests.fixtures_db", "tests.fixtures_temporal", "tests.fixtures_api", "tests.receivers"]
