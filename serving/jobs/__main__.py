from serving.jobs.cli import main

if __name__ == "__main__":  # importing this module (as tests that walk the package do) runs nothing
    main()
