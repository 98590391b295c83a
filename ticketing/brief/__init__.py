"""The supervisors' morning brief (晨报) on screen: their scope as of now."""
