ignored {
