"""Tests of the DaemonSet and StatefulSet controllers and their ControllerRevision history."""
