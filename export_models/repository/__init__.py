"""Writing the model repository, one job a module:

- versions.py: the versions present and the one an export writes;
- names.py: model names, aliases, where a model folder may go;
- disk.py: writable folders, a full disk;
- staging.py: the repository lock, the export's plan and staging folder;
- rendering.py: graph.pbtxt and subconfig.json from templates/;
- config_json.py: config.json read and merged;
- commit.py: the final move into place.

What the export pipeline calls is importable from here.
"""

from export_models.repository.commit import commit
from export_models.repository.disk import disk_full_reason
from export_models.repository.rendering import render_graph, render_subconfig
from export_models.repository.staging import RepositoryPlan, plan_export
from export_models.repository.versions import servable_versions

__all__ = [
    "RepositoryPlan",
    "commit",
    "disk_full_reason",
    "plan_export",
    "render_graph",
    "render_subconfig",
    "servable_versions",
]
