pytest_plugins = ["tests.fixtures_db", "tests.fixtures_temporal", "tests.fixtures_api", "tests.receivers"]
