print("interop")
