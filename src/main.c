/* main.c - the finalverse server binary (placeholder until the runtime lands). */
#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "usage: finalverse up|serve MODULE...|config check|show\n");
    return 2;
}
