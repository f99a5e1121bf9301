"""What /v2.0/extensions advertises: exactly what is implemented."""

UPDATED = "2026-11-24T00:00:00-00:00"

_EXTENSIONS = [
    ("project-id", "project_id field enabled",
     "Extension that indicates that project_id field is enabled."),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes"),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources; "
     "If-Match: revision_number=N makes updates conditional."),
    ("standard-attr-tag", "Tag support for resources with standard attribute",
     "Enables to set tag on resources with standard attribute."),
    # The older tag aliases some clients still look for: tags on networks
    # (tag), on subnets and ports (tag-ext); the same tags sub-resource.
    ("tag", "Tag support", "Tags on networks: /tags sub-resource and tag filters."),
    ("tag-ext", "Tag support for resources: subnet, port",
     "Tags on subnets and ports as well: /tags sub-resource and tag filters."),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to resources and the changed_since filter."),
    ("filter-validation", "Filter parameters validation",
     "Provides validation on filter parameters."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("fields", "Fields selection", "Select the attributes of a response with fields=."),
    ("ip-substring-filtering", "IP address substring filtering",
     "Provides IP address substring filtering when listing ports"),
    ("empty-string-filtering", "Empty String Filtering Extension",
     "Allow filtering by attributes with empty string value"),
    ("port-security", "Port Security", "Provides port security"),
    ("allowed-address-pairs", "Allowed Address Pairs",
     "Provides allowed address pairs"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)",
     "Provides a writable MTU attribute for a network resource."),
]


def builtin():
    return [{"alias": a, "name": n, "description": d, "updated": UPDATED, "links": []}
            for a, n, d in _EXTENSIONS]
