from serving.jobs.cli import main

main()
