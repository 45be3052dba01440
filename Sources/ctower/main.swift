print("ctower")
