from benchmark.run import main

main()
