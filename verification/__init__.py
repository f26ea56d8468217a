"""Every result held against simulation: one check per result, the runner and the report writer."""
