"""Names of the environment variables affectstream reads: one owner for every module that reads one."""

REDIS_URL = "AFFECTSTREAM_REDIS_URL"  # default of redis.url
DETECTOR = "AFFECTSTREAM_DETECTOR"  # default of detector.model (a path or an insightface pack name)
MODEL = "AFFECTSTREAM_MODEL"  # default of engine.model
SHARED = "AFFECTSTREAM_SHARED"  # the shared media, data and weights folder (default ../shared)
REQUIRE_SHARED = "AFFECTSTREAM_REQUIRE_SHARED"  # 1: tests fail, instead of skip, without the shared folder
LOG_LEVEL = "AFFECTSTREAM_LOG_LEVEL"
LOG_FORMAT = "AFFECTSTREAM_LOG_FORMAT"
DASHBOARD_TOKEN = "AFFECTSTREAM_DASHBOARD_TOKEN"
CAPACITY_FILE = "AFFECTSTREAM_CAPACITY_FILE"  # what `bench capacity` measured (default var/capacity.json)
