"""The demo city's buses: a sample GTFS-JP feed, a bus driven along its timetable, riders."""
