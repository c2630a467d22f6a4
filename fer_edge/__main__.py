from fer_edge.entry import main

main()
